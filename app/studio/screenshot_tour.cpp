#include "screenshot_tour.h"

#include <QApplication>
#include <QDir>
#include <QPixmap>
#include <QScreen>
#include <QTabWidget>
#include <QTimer>
#include <cstdio>

#include "config_form.h"
#include "generation_form.h"
#include "job_queue.h"
#include "main_window.h"
#include "run_supervisor.h"
#include "video_player.h"
#include "wan/model_info.h"

namespace {

void shoot(wan_ui::MainWindow& w, const QString& file) {
  QPixmap shot = w.screen() ? w.screen()->grabWindow(w.winId()) : QPixmap();
  if (shot.isNull()) shot = w.grab();  // platforms without screen grabbing (offscreen)
  const bool ok = shot.save(file);
  std::fprintf(stderr, "screenshot %s: %s\n", qPrintable(file), ok ? "saved" : "FAILED");
}

}  // namespace

void startScreenshotTour(wan_ui::MainWindow& w, const QString& dir) {
  QDir().mkpath(dir);
  QTimer::singleShot(1500, &w, [&w, dir] {
    w.loadModel(QString::fromStdString(wan::demo_model_dir()));
    wan::DistConfig c;
    c.world_size = 2;
    c.backend = wan::resolve_backend(c, wan::Device{});
    c.use_context_parallel = true;
    c.ulysses_size = 2;
    w.configForm()->setConfig(c);
    wan::GenerationRequest r;
    r.prompt = "A red fox runs through fresh snow at dawn, cinematic, soft light";
    r.width = 480;
    r.height = 272;
    r.frames = 17;
    r.steps = 16;
    r.seed = 42;
    w.generationForm()->setRequest(r);
    const QString out = QDir::temp().filePath("wan-studio-screenshots");
    QDir(out).removeRecursively();  // the history shows this run only
    w.generationForm()->setOutputFolder(out);
    QApplication::processEvents();
    shoot(w, dir + "/studio-idle.png");
    w.generate();
    auto* poll = new QTimer(&w);
    QObject::connect(poll, &QTimer::timeout, &w, [&w, dir, poll] {
      const auto& ranks = w.supervisor()->ranks();
      if (ranks.empty() || !w.previewShown()) return;
      if (ranks[0].phase == static_cast<int>(wan::Phase::kSampling) && ranks[0].step >= 6) {
        poll->stop();
        shoot(w, dir + "/studio-running.png");
      }
    });
    poll->start(100);
    QObject::connect(&w, &wan_ui::MainWindow::runFinished, &w, [&w, dir](int code) {
      if (code != 0) {
        std::fprintf(stderr, "the run failed: %s\n", qPrintable(w.lastMessage()));
        QApplication::exit(1);
        return;
      }
      QTimer::singleShot(1200, &w, [&w, dir] {
        shoot(w, dir + "/studio-player.png");
        // Image-to-video: the i2v demo model with the sample start picture (run from the repository).
        w.loadModel(QString::fromStdString(wan::demo_model_dir(true)));
        w.generationForm()->setStartImage(QDir::current().absoluteFilePath("resources/samples/start.png"));
        QTimer::singleShot(500, &w, [&w, dir] {
          shoot(w, dir + "/studio-i2v.png");
          // The smallest supported window and a 1440p one (rendered by the widgets: the window may be larger
          // than the virtual screen).
          w.loadModel(QString::fromStdString(wan::demo_model_dir()));
          for (const QSize size : {QSize(1280, 720), QSize(2560, 1440)}) {
            if (size.width() > 1280) {  // the queue (and no noise frame, which a PNG cannot compress)
              w.queue()->setFile({});
              w.addToQueue();
              w.tabs()->setCurrentIndex(3);
            }
            w.resize(size);
            QApplication::processEvents();
            QApplication::processEvents();
            const QString file = dir + QString("/studio-%1x%2.png").arg(size.width()).arg(size.height());
            const bool ok = w.grab().save(file);
            std::fprintf(stderr, "screenshot %s (%dx%d): %s\n", qPrintable(file), w.width(), w.height(),
                         ok ? "saved" : "FAILED");
          }
          QApplication::exit(0);
        });
      });
    });
  });
}
