// The studio's window (MainWindow) with real runs (demo model, world size 2, gloo): a text-to-video run
// from Generate to the player, history and export; an image-to-video run; closing mid-run stops it with
// nothing left behind; settings kept between sessions; the Auto preset on a machine without GPUs.
#include <QDir>
#include <QFileInfo>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QProgressBar>
#include <QRegularExpression>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QtTest/QtTest>

#include "config_form.h"
#include "estimate_table_model.h"
#include "generation_form.h"
#include "history_model.h"
#include "main_window.h"
#include "run_supervisor.h"
#include "studio_test_util.h"
#include "video_player.h"
#include "wan/error.h"
#include "wan/job.h"
#include "wan/model_info.h"

using studio_test::longRequest;
using studio_test::processAlive;
using studio_test::sampling;
using studio_test::smallRequest;
using studio_test::studioSegments;
using studio_test::WindowDirs;
using studio_test::world2;

class TestMainWindow : public QObject {
  Q_OBJECT
 private slots:
  void initTestCase() { QVERIFY(studio_test::initStudioTest()); }

  void runFromTheWindowCompletesAndPlays() {
    WindowDirs dirs;
    const wan_ui::StudioOptions o = dirs.options();
    QTemporaryDir& out = dirs.out;
    wan_ui::MainWindow w(o);
    QVERIFY(w.loadModel(QString::fromStdString(wan::demo_model_dir())));
    w.configForm()->setConfig(world2());
    wan::GenerationRequest r = smallRequest(out.path());
    w.generationForm()->setRequest(r);
    w.generationForm()->setOutputFolder(out.path());
    QSignalSpy finished(&w, &wan_ui::MainWindow::runFinished);
    w.generate();
    QVERIFY2(w.supervisor()->isRunning(), qPrintable(w.lastMessage()));
    QCOMPARE(w.progressBarCount(), 2);
    QVERIFY(finished.wait(240000));
    QCOMPARE(finished.front().front().toInt(), 0);
    QVERIFY(w.previewShown());  // the live preview came through the board
    QCOMPARE(w.player()->frameCount(), 5);
    QCOMPARE(w.tabs()->currentWidget(), static_cast<QWidget*>(w.player()));
    QCOMPARE(w.historyModel()->rowCount(), 1);
    for (int rank = 0; rank < 2; ++rank) QVERIFY(!processAlive(w.supervisor()->pidOf(rank)));
    QCOMPARE(studioSegments(), 0);
    // Export: MP4 copy and PNG frames.
    QCOMPARE(w.player()->exportMp4(out.filePath("copy.mp4")), QString());
    QVERIFY(QFileInfo(out.filePath("copy.mp4")).size() > 0);
    QCOMPARE(w.player()->exportPngFrames(out.filePath("frames")), QString());
    QCOMPARE(QDir(out.filePath("frames")).entryList({"*.png"}).size(), 5);
  }

  // An image-to-video model from the window: without a picture nothing starts and the window says why;
  // with one, two ranks run it, the player shows a video of the picture's aspect within the area, and
  // the history entry brings back the picture and the area asked for.
  void imageToVideoRunFromTheWindow() {
    WindowDirs dirs;
    wan_ui::MainWindow w(dirs.options());
    QVERIFY(w.loadModel(QString::fromStdString(wan::demo_model_dir(true))));
    QVERIFY(w.generationForm()->imageToVideo());
    w.configForm()->setConfig(world2());
    wan::GenerationRequest r = smallRequest(dirs.out.path());  // 128 x 128 area
    r.model.model_dir.clear();
    w.generationForm()->setRequest(r);
    w.generationForm()->setStartImage(QString());
    w.generationForm()->setOutputFolder(dirs.out.path());
    w.generate();
    QVERIFY(!w.supervisor()->isRunning());
    QVERIFY2(w.lastMessage().contains("start picture"), qPrintable(w.lastMessage()));

    const QString picture = QString(WAN_TEST_DATA_DIR) + "/golden/i2v_pipeline_small/input.png";  // 56 x 40
    w.generationForm()->setStartImage(picture);
    QCOMPARE(w.generationForm()->videoSize(), QSize(144, 96));  // what the estimate table is for
    QSignalSpy finished(&w, &wan_ui::MainWindow::runFinished);
    w.generate();
    QVERIFY2(w.supervisor()->isRunning(), qPrintable(w.lastMessage()));
    QVERIFY(finished.wait(240000));
    QVERIFY2(finished.front().front().toInt() == 0, qPrintable(w.lastMessage()));
    QCOMPARE(w.player()->frameCount(), 5);
    QCOMPARE(w.historyModel()->rowCount(), 1);
    const QJsonObject side = w.historyModel()->settingsAt(0);
    QCOMPARE(side.value("video").toObject().value("width").toInt(), 144);  // 56:40 within 128 x 128 (multiples of 16)
    QCOMPARE(side.value("video").toObject().value("height").toInt(), 96);
    QCOMPARE(studioSegments(), 0);

    wan_ui::GenerationForm again;
    again.setImageToVideo(true);
    again.setRequest(wan::job_from_sidecar(QJsonDocument(side).toJson().toStdString()).request);
    QCOMPARE(again.startImage(), QFileInfo(picture).absoluteFilePath());
    QCOMPARE(again.request().width, 128);
    QCOMPARE(again.request().height, 128);
  }

  void closingTheWindowMidRunStopsIt() {
    WindowDirs dirs;
    const wan_ui::StudioOptions o = dirs.options();
    QTemporaryDir& out = dirs.out;
    auto* w = new wan_ui::MainWindow(o);
    QVERIFY(w->loadModel(QString::fromStdString(wan::demo_model_dir())));
    w->configForm()->setConfig(world2());
    w->generationForm()->setRequest(longRequest(out.path()));
    w->generationForm()->setOutputFolder(out.path());
    w->show();
    w->generate();
    QTRY_VERIFY_WITH_TIMEOUT(sampling(w->supervisor()->ranks(), 1), 120000);
    const qint64 pid0 = w->supervisor()->pidOf(0), pid1 = w->supervisor()->pidOf(1);
    QStringList asked;
    w->setConfirm([&](const QString&, const QString& question) {
      asked << question;
      return asked.size() > 1;  // "no" the first time, "yes" the second
    });
    QVERIFY(!w->close());  // closing mid-run asks; "no" keeps the run going
    QVERIFY(w->supervisor()->isRunning());
    QVERIFY(asked.front().contains("A generation is running"));
    QVERIFY(w->close());
    QVERIFY(!w->supervisor()->isRunning());
    delete w;
    QVERIFY(!processAlive(pid0) && !processAlive(pid1));
    QCOMPARE(studioSegments(), 0);
    QVERIFY(QDir(out.path()).entryList({"*.mp4"}, QDir::Files).isEmpty());
  }

  // Cancel from the window: said plainly ("Cancelled."), every bar reset, no ETA left behind.
  void cancelFromTheWindowSaysCancelled() {
    WindowDirs dirs;
    wan_ui::MainWindow w(dirs.options());
    QVERIFY(w.loadModel(QString::fromStdString(wan::demo_model_dir())));
    w.configForm()->setConfig(world2());
    w.generationForm()->setRequest(longRequest(dirs.out.path()));
    w.generationForm()->setOutputFolder(dirs.out.path());
    QSignalSpy finished(&w, &wan_ui::MainWindow::runFinished);
    w.generate();
    QTRY_VERIFY_WITH_TIMEOUT(sampling(w.supervisor()->ranks(), 1, 1), 120000);
    w.cancel();
    QVERIFY(finished.wait(30000));
    QCOMPARE(finished.front().front().toInt(), static_cast<int>(wan::ErrorCode::kCancelled));
    QCOMPARE(w.lastMessage(), QString("Cancelled."));
    const auto bars = w.findChildren<QProgressBar*>(QRegularExpression("^rank\\d+$"));
    QCOMPARE(bars.size(), 2);
    for (QProgressBar* b : bars) {
      QCOMPARE(b->value(), 0);
      QVERIFY2(b->format().endsWith(": cancelled"), qPrintable(b->format()));
    }
    QVERIFY(w.findChild<QLabel*>("eta")->text().isEmpty());
    QCOMPARE(studioSegments(), 0);
  }

  // Without a GPU and without saved settings the first run is the small demo clip (seconds on a CPU).
  void firstRunWithoutGpuIsSmall() {
    WindowDirs dirs;
    wan_ui::MainWindow w(dirs.options());
    const wan::GenerationRequest r = w.generationForm()->request();
    QCOMPARE(r.width, 256);
    QCOMPARE(r.height, 160);
    QCOMPARE(r.frames, 17);
    QCOMPARE(r.steps.value_or(0), 10);
  }

  void settingsPersistBetweenSessions() {
    WindowDirs dirs;
    const wan_ui::StudioOptions o = dirs.options();
    QTemporaryDir& out = dirs.out;
    {
      wan_ui::MainWindow w(o);
      QVERIFY(w.loadModel(QString::fromStdString(wan::demo_model_dir())));
      wan::DistConfig c = world2();
      c.sharding_strategy = wan::ShardingStrategy::kShardGradOp;
      w.configForm()->setConfig(c);
      wan::GenerationRequest r = smallRequest(out.path());
      r.prompt = "remember me";
      r.seed = 1234;
      w.generationForm()->setRequest(r);
      w.generationForm()->setOutputFolder(out.path());
      QVERIFY(w.close());
    }
    wan_ui::MainWindow again(o);
    QCOMPARE(again.generationForm()->request().prompt, std::string("remember me"));
    QCOMPARE(again.generationForm()->request().seed, std::int64_t(1234));
    QCOMPARE(again.generationForm()->outputFolder(), out.path());
    QCOMPARE(again.configForm()->config().world_size, 2);
    QCOMPARE(again.configForm()->config().ulysses_size, 2);
    QVERIFY(again.configForm()->config().sharding_strategy == wan::ShardingStrategy::kShardGradOp);
    QVERIFY(again.estimateModel()->rowCount() == 3);  // the remembered model was inspected again
  }

  void autoPresetWithoutGpusUsesOneCpuProcess() {
    WindowDirs dirs;
    const wan_ui::StudioOptions o = dirs.options();
    wan_ui::MainWindow w(o);
    QVERIFY(w.presetNames().startsWith("Auto"));
    QVERIFY(w.applyPreset("Auto"));
    QCOMPARE(w.configForm()->config().world_size, 1);
    QVERIFY(w.configForm()->config().backend == wan::Backend::kGloo);
    QVERIFY(w.lastMessage().contains("no GPU"));
    QVERIFY(w.applyPreset("4-gpu"));
    QCOMPARE(w.configForm()->config().world_size, 4);
    QVERIFY(w.configForm()->config().backend == wan::Backend::kGloo);  // no GPU here: CPU processes
  }
};

QTEST_MAIN(TestMainWindow)
#include "tst_main_window.moc"
