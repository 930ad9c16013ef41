// The studio's window (MainWindow) with real runs (demo model, world size 2, gloo): a text-to-video run
// from Generate to the player, history and export; an image-to-video run; closing mid-run stops it with
// nothing left behind; settings kept between sessions; the Auto preset on a machine without GPUs.
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

namespace {

// What a layout gives a widget at least (as QLayout's qSmartMinSize).
QSize layoutMinimum(const QWidget* w) {
  const QSize hint = w->sizeHint(), min_hint = w->minimumSizeHint();
  const QSizePolicy p = w->sizePolicy();
  auto one = [](QSizePolicy::Policy policy, int h, int m) {
    if (policy == QSizePolicy::Ignored) return 0;
    return (policy & QSizePolicy::ShrinkFlag) ? m : std::max(h, m);
  };
  QSize s(one(p.horizontalPolicy(), hint.width(), min_hint.width()),
          one(p.verticalPolicy(), hint.height(), min_hint.height()));
  if (w->hasHeightForWidth()) s.setHeight(std::min(s.height(), w->heightForWidth(w->width())));
  s = s.boundedTo(w->maximumSize());
  if (w->minimumWidth() > 0) s.setWidth(w->minimumWidth());
  if (w->minimumHeight() > 0) s.setHeight(w->minimumHeight());
  return s;
}

bool inALayout(const QWidget* w) {
  const QWidget* parent = w->parentWidget();
  if (!parent) return false;
  QList<QLayout*> layouts = parent->findChildren<QLayout*>();
  if (parent->layout()) layouts << parent->layout();
  for (const QLayout* l : layouts)
    if (l->parentWidget() == parent && l->indexOf(const_cast<QWidget*>(w)) >= 0) return true;
  return false;
}

bool insideAScrollArea(const QWidget* w) {
  const QWidget* p = w->parentWidget();
  return p && qobject_cast<const QAbstractScrollArea*>(p->parentWidget()) &&
         qobject_cast<const QAbstractScrollArea*>(p->parentWidget())->viewport() == p;
}

QString describe(const QWidget* w) {
  return QString("%1 '%2' (%3) in %4")
      .arg(w->metaObject()->className(), w->objectName(),
           QString("%1,%2 %3x%4").arg(w->x()).arg(w->y()).arg(w->width()).arg(w->height()),
           w->parentWidget()
               ? QString("%1 '%2'").arg(w->parentWidget()->metaObject()->className(), w->parentWidget()->objectName())
               : QString("-"));
}

// Every visible widget lies within its parent (content of a scroll area may extend past its viewport),
// no two visible siblings in a layout overlap, and each gets at least what its layout promises it.
QStringList layoutProblems(QWidget& window) {
  QStringList problems;
  for (QWidget* w : window.findChildren<QWidget*>()) {
    if (!w->isVisibleTo(&window) || w->isWindow()) continue;
    QWidget* parent = w->parentWidget();
    if (!insideAScrollArea(w) && !parent->rect().contains(w->geometry()))
      problems << "outside its parent: " + describe(w);
    if (!inALayout(w)) continue;
    const QSize min = layoutMinimum(w);
    if (w->width() < min.width() || w->height() < min.height())
      problems << QString("squeezed below %1x%2: ").arg(min.width()).arg(min.height()) + describe(w);
    for (QObject* o : parent->children()) {
      auto* sibling = qobject_cast<QWidget*>(o);
      if (!sibling || sibling <= w || !sibling->isVisibleTo(&window) || sibling->isWindow() || !inALayout(sibling))
        continue;
      if (w->geometry().intersects(sibling->geometry()))
        problems << "overlaps " + describe(sibling) + ": " + describe(w);
    }
  }
  return problems;
}

}  // namespace

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

  // A run the estimate says cannot fit is refused before it starts (WAN_TEST_AVAILABLE_BYTES stands for
  // a smaller machine): the window asks whether to start anyway, with the estimate's words; no keeps
  // the failure, yes runs it to the end.
  void runThatCannotFitAsksToStartAnyway() {
    WindowDirs dirs;
    wan_ui::MainWindow w(dirs.options());
    QVERIFY(w.loadModel(QString::fromStdString(wan::demo_model_dir())));
    w.configForm()->setConfig(world2());
    w.generationForm()->setRequest(smallRequest(dirs.out.path()));
    w.generationForm()->setOutputFolder(dirs.out.path());
    qputenv("WAN_TEST_AVAILABLE_BYTES", "1000000");
    struct Unset {
      ~Unset() { qunsetenv("WAN_TEST_AVAILABLE_BYTES"); }
    } unset;
    QStringList questions;
    bool answer = false;
    w.setConfirm([&](const QString& title, const QString& question) {
      questions << title + ": " + question;
      return answer;
    });
    QSignalSpy finished(&w, &wan_ui::MainWindow::runFinished);
    w.generate();
    QVERIFY(finished.wait(60000));
    QCOMPARE(finished.takeFirst().front().toInt(), static_cast<int>(wan::ErrorCode::kOutOfMemory));
    QCOMPARE(questions.size(), 1);
    QVERIFY2(questions.front().startsWith("Not enough memory: this run needs about ") &&
                 questions.front().contains("by the estimate") && questions.front().contains("Start anyway?") &&
                 !questions.front().contains("--force"),
             qPrintable(questions.front()));
    QVERIFY2(w.lastMessage().contains("by the estimate"), qPrintable(w.lastMessage()));
    QVERIFY(QDir(dirs.out.path()).entryList({"*.mp4"}, QDir::Files).isEmpty());
    answer = true;
    w.generate();
    QVERIFY(finished.wait(240000));
    QCOMPARE(finished.takeFirst().front().toInt(), 0);
    QCOMPARE(questions.size(), 2);
    QCOMPARE(QDir(dirs.out.path()).entryList({"*.mp4"}, QDir::Files).size(), 1);
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

  // File, Edit, View, Help with mnemonics; every action has its shortcut; the old window shortcuts are
  // the menu actions now (no duplicates).
  void menusAndShortcuts() {
    WindowDirs dirs;
    wan_ui::MainWindow w(dirs.options());
    QStringList menus;
    for (QAction* a : w.menuBar()->actions()) menus << a->text();
    QCOMPARE(menus, QStringList({"&File", "&Edit", "&View", "&Help"}));
    QCOMPARE(action(w, "quitAction")->shortcut(), QKeySequence("Ctrl+Q"));
    QCOMPARE(action(w, "generateAction")->shortcut(), QKeySequence("Ctrl+Return"));
    QCOMPARE(action(w, "cancelAction")->shortcut(), QKeySequence("Escape"));
    QCOMPARE(action(w, "addToQueueAction")->shortcut(), QKeySequence("Ctrl+Shift+Return"));
    QCOMPARE(action(w, "playAction")->shortcut(), QKeySequence("Ctrl+P"));
    QVERIFY(w.findChildren<QShortcut*>().isEmpty());
    for (QAction* m : w.menuBar()->actions())
      for (QAction* a : m->menu()->actions())
        if (!a->isSeparator() && a->objectName() != "aboutAction")
          QVERIFY2(!a->shortcut().isEmpty(), qPrintable(a->text() + " has no shortcut"));
    // View > 1..4 switch the tabs.
    const QList<QAction*> view = w.menuBar()->actions()[2]->menu()->actions();
    QCOMPARE(view[1]->shortcut(), QKeySequence("Ctrl+2"));
    view[1]->trigger();
    QCOMPARE(w.tabs()->currentWidget(), static_cast<QWidget*>(w.player()));
    view[2]->trigger();
    QCOMPARE(w.tabs()->currentWidget()->objectName(), QString("log"));
    // Help > About: the engine's versions and Qt's.
    QVERIFY(wan_ui::MainWindow::aboutText().contains(QString("Qt ") + qVersion()));
    QVERIFY(wan_ui::MainWindow::aboutText().contains("LibTorch"));
  }

  // File > Copy command line: what it copies, run by a shell, is a `wan generate` the CLI accepts, and
  // the job it writes is the form's and the settings'.
  void copiedCommandLineRunsInTheCli() {
    WindowDirs dirs;
    wan_ui::MainWindow w(dirs.options());
    QVERIFY(w.loadModel(QString::fromStdString(wan::demo_model_dir())));
    w.configForm()->setConfig(world2());
    wan::GenerationRequest r = smallRequest(dirs.out.path());
    r.prompt = "it's a fox \"in\" snow $HOME";
    r.width = 64;
    r.height = 48;
    r.steps = 2;
    w.generationForm()->setRequest(r);
    w.generationForm()->setOutputFolder(dirs.out.path());
    action(w, "copyCommandAction")->trigger();
    const QString command = QGuiApplication::clipboard()->text();
    QCOMPARE(command, w.commandLine().section(" --output ", 0, 0) + " --output " +
                          command.section(" --output ", 1));  // the same command
    QVERIFY2(command.contains("--world-size 2") && command.contains("--ulysses 2"), qPrintable(command));
    QVERIFY2(!command.contains("--ring") && !command.contains("--dit-fsdp") && !command.contains("--sharding"),
             qPrintable(command));
    const QString job_file = dirs.out.filePath("job.json");
    QProcess sh;
    sh.start("/bin/sh", {"-c", command + " --write-job " + job_file});
    QVERIFY(sh.waitForFinished(60000));
    QVERIFY2(sh.exitCode() == 0, qPrintable(command + "\n" + sh.readAllStandardError()));
    const wan::Job job = wan::load_job(job_file.toStdString());
    QCOMPARE(QString::fromStdString(job.request.prompt), QString::fromStdString(r.prompt));
    QCOMPARE(job.request.width, 64);
    QCOMPARE(job.request.height, 48);
    QCOMPARE(job.request.frames, 5);
    QCOMPARE(job.request.steps.value_or(0), 2);
    QCOMPARE(job.request.seed, std::int64_t(7));
    QCOMPARE(job.config.world_size, 2);
    QCOMPARE(job.config.ulysses_size, 2);
    QVERIFY(job.config.context_parallel());
    QVERIFY(!job.config.dit_fsdp && !job.config.cfg_parallel);
    QVERIFY(QString::fromStdString(job.request.output).startsWith(dirs.out.path()));
  }

  // Choosing a preset applies it; Undo preset brings back what was there; an edit marks it modified;
  // built-ins cannot be renamed or deleted (and say why); each preset says what it is for.
  void presetsApplyOnSelectionWithUndo() {
    WindowDirs dirs;
    wan_ui::MainWindow w(dirs.options());
    auto* box = w.findChild<QComboBox*>("presets");
    wan::DistConfig before = world2();
    before.hang_timeout_seconds = 77;
    w.configForm()->setConfig(before);
    box->setCurrentText("4-gpu");
    QCOMPARE(w.configForm()->config().world_size, 4);
    QVERIFY(w.presetState().isEmpty());
    QVERIFY(!w.findChild<QLabel*>("presetDescription")->text().isEmpty());
    QVERIFY(!w.findChild<QPushButton*>("renamePreset")->isEnabled());
    QVERIFY(!w.findChild<QPushButton*>("deletePreset")->isEnabled());
    QVERIFY(w.findChild<QPushButton*>("deletePreset")->toolTip().contains("Built-in presets cannot"));
    wan::DistConfig edited = w.configForm()->config();
    edited.hang_timeout_seconds = 99;
    w.configForm()->setConfig(edited);
    QVERIFY2(w.presetState().startsWith("modified"), qPrintable(w.presetState()));
    QVERIFY(action(w, "undoPresetAction")->isEnabled());
    action(w, "undoPresetAction")->trigger();
    QCOMPARE(w.configForm()->config().world_size, 2);
    QCOMPARE(w.configForm()->config().hang_timeout_seconds, 77);
    QVERIFY(!action(w, "undoPresetAction")->isEnabled());
    // A preset of the user's own can be renamed and deleted.
    QVERIFY(wan_ui::PresetStore(WAN_PRESETS_DIR, dirs.user.path()).save("mine", world2()).isEmpty());
    wan_ui::MainWindow again(dirs.options());
    again.findChild<QComboBox*>("presets")->setCurrentText("mine");
    QCOMPARE(again.configForm()->config().world_size, 2);
    QVERIFY(again.findChild<QPushButton*>("deletePreset")->isEnabled());
    wan::DistConfig changed = again.configForm()->config();
    changed.hang_timeout_seconds = 55;
    again.configForm()->setConfig(changed);
    QVERIFY(again.presetState().startsWith("modified"));
    QVERIFY(again.close());
    // The next session shows the preset chosen and that the settings differ from it.
    wan_ui::MainWindow third(dirs.options());
    QCOMPARE(third.findChild<QComboBox*>("presets")->currentText(), QString("mine"));
    QCOMPARE(third.configForm()->config().hang_timeout_seconds, 55);
    QVERIFY2(third.presetState().startsWith("modified"), qPrintable(third.presetState()));
  }

  // The window's shortcuts work with the focus in the prompt box (Ctrl+Enter generates from there).
  void shortcutsWorkFromThePromptBox() {
    WindowDirs dirs;
    wan_ui::MainWindow w(dirs.options());
    wan::GenerationRequest r = smallRequest(dirs.out.path());
    r.prompt.clear();
    w.generationForm()->setRequest(r);
    w.show();
    w.activateWindow();
    QVERIFY(QTest::qWaitForWindowActive(&w));
    auto* prompt = w.findChild<QPlainTextEdit*>("prompt");
    prompt->setFocus();
    QTRY_VERIFY(prompt->hasFocus());
    QTest::keyClick(prompt, Qt::Key_Return, Qt::ControlModifier);
    QCOMPARE(w.lastMessage(), QString("Write a prompt first."));  // Generate ran (and said what is missing)
    QTest::keyClick(prompt, Qt::Key_3, Qt::ControlModifier);
    QCOMPARE(w.tabs()->currentWidget()->objectName(), QString("log"));
  }

  // Every built-in preset applied after every other gives a valid layout on this machine (no GPU), so
  // Generate stays enabled; an invalid layout says why next to the disabled Generate.
  void everyPresetAfterEveryOtherIsValid() {
    WindowDirs dirs;
    wan_ui::MainWindow w(dirs.options());
    const QStringList names = w.presetNames();
    QVERIFY(names.contains("memory-efficient") && names.contains("1-gpu"));
    for (const QString& first : names)
      for (const QString& second : names) {
        QVERIFY(w.applyPreset(first));
        QVERIFY(w.applyPreset(second));
        const auto problems = w.configForm()->problems();
        QVERIFY2(problems.empty(), qPrintable(first + " then " + second + ": " +
                                              QString::fromStdString(problems.empty() ? "" : problems[0].message)));
        QVERIFY(w.findChild<QPushButton*>("generateButton")->isEnabled());
      }
    QVERIFY(w.applyPreset("1-gpu"));
    QVERIFY(w.applyPreset("memory-efficient"));
    QVERIFY(w.configForm()->config().t5_cpu && !w.configForm()->config().use_fsdp);
    QVERIFY(w.applyPreset("2-gpu"));
    QVERIFY(w.applyPreset("memory-efficient"));
    QVERIFY(w.configForm()->config().dit_fsdp && w.configForm()->config().t5_cpu);
    QCOMPARE(w.configForm()->config().world_size, 2);
    QVERIFY(w.applyPreset("8-gpu"));  // Ulysses 4 on the demo model's 2 heads: the rest goes to the ring
    QCOMPARE(w.configForm()->config().ulysses_size, 2);
    QCOMPARE(w.configForm()->config().ring_size, 4);
    QVERIFY2(w.lastMessage().contains("does not divide the model's 2 heads"), qPrintable(w.lastMessage()));
    wan::DistConfig bad;
    bad.backend = wan::Backend::kGloo;
    bad.use_fsdp = bad.dit_fsdp = true;  // world size 1 with FSDP on
    w.configForm()->setConfig(bad);
    QVERIFY(!w.findChild<QPushButton*>("generateButton")->isEnabled());
    auto* reason = w.findChild<QLabel*>("generateReason");
    QVERIFY(!reason->isHidden());
    QVERIFY2(reason->text().contains("needs world_size > 1"), qPrintable(reason->text()));
  }

  // The rank bars in plain words (no "none 0/0", frames per second of decoding as s/frame): the
  // engine's wan::format_rank_status, the one formatter of the CLI and the studio.
  void rankBarsInPlainWords() {
    auto rank_text = [](int rank, const wan::RankStatus& s) {
      return QString::fromStdString(wan::format_rank_status(rank, s));
    };
    wan::RankStatus s;
    s.state = wan::RankState::kStarting;
    QCOMPARE(rank_text(0, s), QString("rank 0: starting"));
    s.state = wan::RankState::kRunning;
    s.phase = static_cast<int>(wan::Phase::kLoading);
    s.step = 0;
    s.total = 1;
    QCOMPARE(rank_text(0, s), QString("rank 0: loading the DiT"));
    s.phase = static_cast<int>(wan::Phase::kSampling);
    s.step = 3;
    s.total = 10;
    s.seconds_per_step = 2.1;
    s.memory_bytes = 3ull << 29;
    QCOMPARE(rank_text(1, s), QString("rank 1: sampling step 3/10 · 2.1 s/step · 1.50 GiB"));
    s.detail = "high-noise expert";  // Wan2.2 A14B: the expert of the step
    QCOMPARE(rank_text(1, s), QString("rank 1: sampling step 3/10 (high-noise expert) · 2.1 s/step · 1.50 GiB"));
    s.detail.clear();
    s.phase = static_cast<int>(wan::Phase::kDecoding);
    s.step = 2;
    s.total = 5;
    s.seconds_per_step = 0.8;
    s.memory_bytes = 0;
    QCOMPARE(rank_text(0, s), QString("rank 0: decoding frame 2/5 · 0.8 s/frame"));
    s.phase = static_cast<int>(wan::Phase::kEncodingText);
    QCOMPARE(rank_text(0, s), QString("rank 0: encoding the start picture"));
    s.step = 0;
    QCOMPARE(rank_text(0, s), QString("rank 0: encoding the prompt"));
    s.state = wan::RankState::kFailed;
    s.phase = static_cast<int>(wan::Phase::kSampling);
    s.error = "out of memory";
    QVERIFY(rank_text(2, s).startsWith("rank 2: failed while sampling step 0/5"));
    QVERIFY(rank_text(2, s).endsWith(" · out of memory"));
  }

  // The window works from 1280x720 up: every widget within its parent (or its scroll area), no
  // overlapping siblings, none squeezed below its minimum. Screenshots at both sizes when
  // WAN_STUDIO_SCREENSHOT_DIR is set.
  void windowFitsFrom1280x720_data() {
    QTest::addColumn<QSize>("size");
    QTest::newRow("1280x720") << QSize(1280, 720);
    QTest::newRow("2560x1440") << QSize(2560, 1440);
  }
  void windowFitsFrom1280x720() {
    QFETCH(QSize, size);
    WindowDirs dirs;
    wan_ui::MainWindow w(dirs.options());
    QVERIFY(w.loadModel(QString::fromStdString(wan::demo_model_dir())));
    w.configForm()->setConfig(world2());
    w.generationForm()->setOutputFolder(dirs.out.path());
    if (qEnvironmentVariableIsSet("DEBUG_LAYOUT"))
      for (QWidget* c : w.findChildren<QWidget*>())
        if (c->minimumSizeHint().width() > 250)
          qDebug() << c->metaObject()->className() << c->objectName() << c->minimumSizeHint() << c->minimumSize()
                   << (c->parentWidget() ? c->parentWidget()->metaObject()->className() : "");
    QVERIFY2(w.minimumSizeHint().width() <= 1280 && w.minimumSizeHint().height() <= 720,
             qPrintable(QString("minimum %1x%2").arg(w.minimumSizeHint().width()).arg(w.minimumSizeHint().height())));
    w.resize(size);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    QTRY_COMPARE(w.size(), size);
    QApplication::processEvents();
    for (int tab = w.tabs()->count() - 1; tab >= 0; --tab) {  // every page of the run tabs (the preview last)
      w.tabs()->setCurrentIndex(tab);
      QApplication::processEvents();
      const QStringList problems = layoutProblems(w);
      QVERIFY2(problems.isEmpty(), qPrintable(w.tabs()->tabText(tab) + ":\n" + problems.join("\n")));
    }
    if (const QString dir = qEnvironmentVariable("WAN_STUDIO_SCREENSHOT_DIR"); !dir.isEmpty())
      QVERIFY(w.grab().save(QDir(dir).filePath(QString("studio-%1x%2.png").arg(size.width()).arg(size.height()))));
  }

  // The layout check itself finds an overlap, a widget outside its parent and a squeezed button.
  void layoutCheckFindsProblems() {
    QWidget window;
    auto* l = new QHBoxLayout(&window);
    auto* a = new QPushButton("A rather long button text");
    auto* b = new QPushButton("B");
    l->addWidget(a);
    l->addWidget(b);
    window.resize(400, 100);
    window.show();
    QVERIFY(QTest::qWaitForWindowExposed(&window));
    QVERIFY(layoutProblems(window).isEmpty());
    a->setGeometry(0, 0, 20, 30);    // squeezed
    b->setGeometry(10, 0, 500, 30);  // over a, past the window's edge
    const QString found = layoutProblems(window).join("\n");
    QVERIFY2(found.contains("squeezed") && found.contains("overlaps") && found.contains("outside its parent"),
             qPrintable(found));
  }
};

QTEST_MAIN(TestMainWindow)
#include "tst_main_window.moc"
