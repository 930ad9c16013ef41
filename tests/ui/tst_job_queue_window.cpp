// The studio's job queue, with real runs from the window (demo model, two gloo ranks): jobs run in
// order, a failed one is marked and the queue goes on, Cancel pauses it, and it survives a restart.
#include <QAbstractScrollArea>
#include <QAction>
#include <QClipboard>
#include <QComboBox>
#include <QDir>
#include <QFileInfo>
#include <QGuiApplication>
#include <QHBoxLayout>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QLayout>
#include <QMenu>
#include <QMenuBar>
#include <QPlainTextEdit>
#include <QProcess>
#include <QProgressBar>
#include <QPushButton>
#include <QRegularExpression>
#include <QScrollArea>
#include <QShortcut>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QtTest/QtTest>

#include "config_form.h"
#include "estimate_table_model.h"
#include "generation_form.h"
#include "history_model.h"
#include "job_queue.h"
#include "main_window.h"
#include "preset_store.h"
#include "run_supervisor.h"
#include "studio_test_util.h"
#include "video_player.h"
#include "wan/error.h"
#include "wan/generation.h"
#include "wan/job.h"
#include "wan/launcher.h"
#include "wan/model_info.h"

using studio_test::action;
using studio_test::longRequest;
using studio_test::processAlive;
using studio_test::sampling;
using studio_test::smallRequest;
using studio_test::studioSegments;
using studio_test::WindowDirs;
using studio_test::world2;

namespace {}  // namespace

class TestJobQueueWindow : public QObject {
  Q_OBJECT
 private slots:
  void initTestCase() { QVERIFY(studio_test::initStudioTest()); }

  // The queue: two jobs and one that fails between them run in order, each into its own video; the
  // failed one is marked and the queue goes on.
  void queueRunsJobsInOrder() {
    WindowDirs dirs;
    wan_ui::MainWindow w(dirs.options());
    QVERIFY(w.loadModel(QString::fromStdString(wan::demo_model_dir())));
    wan::DistConfig one;
    one.backend = wan::Backend::kGloo;
    w.configForm()->setConfig(one);
    w.generationForm()->setOutputFolder(dirs.out.path());
    wan::GenerationRequest r = smallRequest(dirs.out.path());
    r.width = 64;
    r.height = 48;
    r.steps = 2;
    r.prompt = "first";
    w.generationForm()->setRequest(r);
    action(w, "addToQueueAction")->trigger();
    wan::Job broken;
    broken.request = r;
    broken.request.prompt = "broken";
    broken.request.model.model_dir = dirs.out.filePath("no-such-model").toStdString();
    broken.config.backend = wan::Backend::kGloo;
    w.queue()->add(broken, dirs.out.path());
    r.prompt = "second";
    w.generationForm()->setRequest(r);
    w.addToQueue();
    QVERIFY2(w.queue()->size() == 3, qPrintable(w.lastMessage()));
    QVERIFY(!w.supervisor()->isRunning());  // queued, not started
    w.runQueue();
    QTRY_VERIFY_WITH_TIMEOUT(w.lastMessage().startsWith("Queue finished"), 240000);
    using State = wan_ui::JobQueueModel::State;
    QVERIFY2(w.queue()->at(0).state == State::kDone, qPrintable(w.queue()->at(0).message));
    QVERIFY(w.queue()->at(1).state == State::kFailed);
    QVERIFY2(w.queue()->at(2).state == State::kDone, qPrintable(w.queue()->at(2).message));
    const QString first = w.queue()->at(0).message, second = w.queue()->at(2).message;
    QVERIFY(first != second);
    for (const QString& video : {first, second}) QVERIFY2(QFileInfo(video).size() > 0, qPrintable(video));
    QVERIFY(QFileInfo(first).lastModified() <= QFileInfo(second).lastModified());
    auto promptOf = [](const QString& video) {
      QFile f(QFileInfo(video).path() + "/" + QFileInfo(video).completeBaseName() + ".json");
      return f.open(QIODevice::ReadOnly)
                 ? QString::fromStdString(wan::job_from_sidecar(f.readAll().toStdString()).request.prompt)
                 : QString();
    };
    QCOMPARE(promptOf(first), QString("first"));
    QCOMPARE(promptOf(second), QString("second"));
    QCOMPARE(studioSegments(), 0);
  }

  // Cancel during a queued job stops it and pauses the queue: the rest stays pending, nothing runs.
  void cancelPausesTheQueue() {
    WindowDirs dirs;
    wan_ui::MainWindow w(dirs.options());
    QVERIFY(w.loadModel(QString::fromStdString(wan::demo_model_dir())));
    w.configForm()->setConfig(world2());
    w.generationForm()->setOutputFolder(dirs.out.path());
    w.generationForm()->setRequest(longRequest(dirs.out.path()));
    w.addToQueue();
    w.addToQueue();
    QSignalSpy finished(&w, &wan_ui::MainWindow::runFinished);
    w.runQueue();
    QVERIFY(w.supervisor()->isRunning());
    QTRY_VERIFY_WITH_TIMEOUT(sampling(w.supervisor()->ranks(), 1, 1), 120000);
    action(w, "cancelAction")->trigger();
    QVERIFY(finished.wait(30000));
    QTest::qWait(200);
    using State = wan_ui::JobQueueModel::State;
    QVERIFY(w.queue()->at(0).state == State::kCancelled);
    QVERIFY(w.queue()->at(1).state == State::kPending);
    QVERIFY(!w.supervisor()->isRunning());
    QVERIFY2(w.lastMessage().contains("queue is paused"), qPrintable(w.lastMessage()));
    QCOMPARE(studioSegments(), 0);
  }

  // The queue is saved on every change beside the settings file and a new window shows it (not started).
  void queueSurvivesARestart() {
    WindowDirs dirs;
    {
      wan_ui::MainWindow w(dirs.options());
      QVERIFY(w.loadModel(QString::fromStdString(wan::demo_model_dir())));
      w.generationForm()->setOutputFolder(dirs.out.path());
      wan::GenerationRequest r = smallRequest(dirs.out.path());
      for (const char* prompt : {"one", "two", "three"}) {
        r.prompt = prompt;
        w.generationForm()->setRequest(r);
        w.addToQueue();
      }
      QVERIFY(w.queue()->move(2, -1));  // one, three, two
      QVERIFY(w.queue()->remove(0));    // three, two
      QCOMPARE(QFileInfo(w.queueFile()).dir(), QFileInfo(dirs.settings.filePath("studio.ini")).dir());
    }
    QVERIFY(QFileInfo::exists(dirs.settings.filePath("studio-queue.json")));
    wan_ui::MainWindow again(dirs.options());
    QCOMPARE(again.queue()->size(), 2);
    QCOMPARE(again.queue()->at(0).job.request.prompt, std::string("three"));
    QCOMPARE(again.queue()->at(1).job.request.prompt, std::string("two"));
    QVERIFY(again.queue()->at(0).state == wan_ui::JobQueueModel::State::kPending);
    QCOMPARE(again.queue()->at(0).folder, dirs.out.path());
    QVERIFY(!again.supervisor()->isRunning());
  }
};

QTEST_MAIN(TestJobQueueWindow)
#include "tst_job_queue_window.moc"
