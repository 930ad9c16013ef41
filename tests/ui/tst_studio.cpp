// The studio's widgets and models, and a real run from the window (demo model, world size 2, gloo):
// config form validation, presets, the estimator table, the history, the supervisor (finish, cancel,
// a killed worker) with checks for leftover processes and shared-memory segments.
#include <QtTest/QtTest>

#include <QDir>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QSpinBox>
#include <QTabWidget>

#include <signal.h>

#include "config_form.h"
#include "estimate_table_model.h"
#include "generation_form.h"
#include "history_model.h"
#include "main_window.h"
#include "preset_store.h"
#include "run_supervisor.h"
#include "video_player.h"
#include "wan/job.h"
#include "wan/model_info.h"

namespace {

int studioSegments() { return QDir("/dev/shm").entryList({"wan-studio-studio-*"}, QDir::Files).size(); }
bool processAlive(qint64 pid) { return pid > 0 && kill(static_cast<pid_t>(pid), 0) == 0; }

wan::GenerationRequest smallRequest(const QString& out_dir) {
  wan::GenerationRequest r;
  r.prompt = "a lighthouse in a storm";
  r.width = 128;
  r.height = 128;
  r.frames = 5;
  r.steps = 3;
  r.seed = 7;
  r.device = "cpu";
  r.model.model_dir = wan::demo_model_dir();
  r.output = QDir(out_dir).filePath("clip.mp4").toStdString();
  return r;
}

// A window of its own: presets, settings file and output folder in temporary folders.
struct WindowDirs {
  QTemporaryDir user, settings, out;
  wan_ui::StudioOptions options() const {
    wan_ui::StudioOptions o;
    o.builtin_presets = WAN_PRESETS_DIR;
    o.user_presets = user.path();
    o.settings_file = settings.filePath("studio.ini");
    return o;
  }
};

// A run long enough (200 steps) to be interrupted while it samples.
wan::GenerationRequest longRequest(const QString& out_dir) {
  wan::GenerationRequest r = smallRequest(out_dir);
  r.steps = 200;
  return r;
}

bool sampling(const std::vector<wan::RankStatus>& ranks, int rank, int min_step = 0) {
  return static_cast<int>(ranks.size()) > rank && ranks[rank].phase == static_cast<int>(wan::Phase::kSampling) &&
         ranks[rank].step >= min_step;
}

wan::DistConfig world2() {
  wan::DistConfig c;
  c.world_size = 2;
  c.backend = wan::resolve_backend(c, "cpu");
  c.use_context_parallel = true;
  c.ulysses_size = 2;
  return c;
}

wan::Job job(const wan::GenerationRequest& request, const wan::DistConfig& config) {
  wan::Job j;
  j.request = request;
  j.config = config;
  return j;
}

}  // namespace

class TestStudio : public QObject {
  Q_OBJECT
 private slots:
  void initTestCase() {
    qputenv("WAN_WORKER", WAN_WORKER_PATH);
    qputenv("WAN_STUDIO_GPUS", "0:0");  // this machine's truth (no GPU), whatever nvidia-smi says
    QVERIFY(!wan::demo_model_dir().empty());
  }

  void configFormShowsMessagesNextToFields() {
    wan_ui::ConfigForm form;
    form.setEnvironment(wan::DistEnvironment{2, 12});
    wan::DistConfig c = world2();
    c.backend = wan::Backend::kNccl;
    c.world_size = 4;
    c.ulysses_size = 4;
    form.setConfig(c);
    QVERIFY(form.messageFor("world_size").contains("Not enough GPUs available: found 2, asked for 4"));
    c.world_size = 2;
    c.ulysses_size = 2;
    c.ring_size = 2;
    form.setConfig(c);
    QVERIFY(form.messageFor("ulysses_size").contains("ulysses_size x ring_size = 2 x 2 = 4, but world_size is 2"));
    QVERIFY(form.messageFor("world_size").isEmpty());
    c.ring_size = 1;
    c.world_size = 8;
    c.ulysses_size = 8;
    form.setEnvironment(wan::DistEnvironment{8, 12});
    form.setConfig(c);
    QVERIFY(form.messageFor("ulysses_size").contains("12 attention heads, not divisible by ulysses_size 8"));
    form.setConfig(world2());
    QVERIFY(form.isValid());
    // Editing a widget revalidates at once.
    QSignalSpy changed(&form, &wan_ui::ConfigForm::changed);
    form.findChild<QSpinBox*>("world_size")->setValue(3);
    QVERIFY(changed.count() >= 1);
    QVERIFY(!form.isValid());
    QCOMPARE(form.config().world_size, 3);
  }

  void presetsLoadSaveRenameDelete() {
    QTemporaryDir user;
    wan_ui::PresetStore store(WAN_PRESETS_DIR, user.path());
    const QStringList names = store.names();
    QCOMPARE(names.mid(0, 4), (QStringList{"1-gpu", "2-gpu", "4-gpu", "8-gpu"}));
    QVERIFY(names.contains("memory-efficient") && names.contains("high-performance"));
    const wan::DistConfig eight = store.load("8-gpu");
    QCOMPARE(eight.world_size, 8);
    QCOMPARE(eight.ulysses_size, 4);
    QCOMPARE(eight.ring_size, 2);
    wan::DistConfig mine = world2();
    mine.dit_fsdp = mine.use_fsdp = true;
    QCOMPARE(store.save("my layout", mine), QString());
    QVERIFY(store.names().contains("my layout"));
    QVERIFY(store.load("my layout").dit_fsdp);
    QVERIFY(!store.save("2-gpu", mine).isEmpty());  // built-ins are not overwritten
    QVERIFY(!store.save("Auto", mine).isEmpty());
    QVERIFY(!store.save("../escape", mine).isEmpty());
    QCOMPARE(store.rename("my layout", "fsdp pair"), QString());
    QVERIFY(!store.contains("my layout"));
    QCOMPARE(store.load("fsdp pair").world_size, 2);
    QVERIFY(!store.remove("1-gpu").isEmpty());
    QCOMPARE(store.remove("fsdp pair"), QString());
    QVERIFY(!store.contains("fsdp pair"));
  }

  void estimateTableHighlightsAndMarks() {
    wan_ui::EstimateTableModel model;
    wan::EstimateSettings s;
    s.config = world2();
    s.config.backend = wan::Backend::kNccl;
    model.setSettings(s);
    QCOMPARE(model.rowCount(), 2);
    QCOMPARE(model.columnCount(), 4);
    QCOMPARE(model.currentColumn(), 1);
    QVERIFY(model.data(model.index(0, 1), wan_ui::EstimateTableModel::kCurrentRole).toBool());
    QVERIFY(!model.data(model.index(0, 0), wan_ui::EstimateTableModel::kCurrentRole).toBool());
    // The 14B needs more than a 24 GiB card without sharding: marked; the 1.3B with T5 on the CPU fits.
    model.setGpuMemory(std::int64_t(24) << 30);
    QVERIFY(!model.data(model.index(1, 0), wan_ui::EstimateTableModel::kFitsRole).toBool());
    s.config.t5_cpu = true;
    model.setSettings(s);
    QVERIFY(model.data(model.index(0, 1), wan_ui::EstimateTableModel::kFitsRole).toBool());
    QVERIFY(model.data(model.index(0, 1), Qt::ToolTipRole).toString().contains("activations"));
    // Each cell is the engine's estimate for that column's layout.
    wan::EstimateSettings col = s;
    col.config = wan::layout_for_world(s.config, 4, 40);
    QCOMPARE(model.data(model.index(1, 2), wan_ui::EstimateTableModel::kPeakBytesRole).toLongLong(),
             qint64(wan::estimate_memory(wan::wan21_t2v_14b(), col).peak));
    // A loaded model adds a row.
    wan::ModelInfo demo = wan::inspect_model(wan::ModelFiles{wan::demo_model_dir(), "", "", "", ""});
    model.setLoadedModel(&demo.dims);
    QCOMPARE(model.rowCount(), 3);
    QVERIFY(model.headerData(2, Qt::Vertical, Qt::DisplayRole).toString().startsWith("Loaded"));
  }

  void historyListsSidecarsAndDeletes() {
    QTemporaryDir dir;
    auto write = [&](const QString& stem, const QString& prompt, const QString& created) {
      QFile video(dir.filePath(stem + ".mp4"));
      QVERIFY(video.open(QIODevice::WriteOnly));
      video.write("not really a video");
      QJsonObject j{{"prompt", prompt}, {"width", 832}, {"height", 480}, {"frames", 81}, {"steps", 50}, {"seed", 3},
                    {"created", created}, {"outputs", QJsonObject{{"video", video.fileName()}}}};
      QFile side(dir.filePath(stem + ".json"));
      QVERIFY(side.open(QIODevice::WriteOnly));
      side.write(QJsonDocument(j).toJson());
    };
    write("a", "older", "2026-01-01T10:00:00Z");
    write("b", "newer", "2026-02-01T10:00:00Z");
    QFile stray(dir.filePath("other.json"));  // not a sidecar
    QVERIFY(stray.open(QIODevice::WriteOnly));
    stray.write("{}");
    stray.close();
    wan_ui::HistoryModel model;
    model.setFolder(dir.path());
    QCOMPARE(model.rowCount(), 2);
    QCOMPARE(model.data(model.index(0), wan_ui::HistoryModel::kPromptRole).toString(), QString("newer"));
    QCOMPARE(model.settingsAt(1).value("seed").toInt(), 3);
    QCOMPARE(model.remove(0), QString());
    QCOMPARE(model.rowCount(), 1);
    QVERIFY(!QFile::exists(dir.filePath("b.mp4")) && !QFile::exists(dir.filePath("b.json")));
    QVERIFY(QFile::exists(dir.filePath("a.mp4")));
  }

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
    QVERIFY(w->close());
    QVERIFY(!w->supervisor()->isRunning());
    delete w;
    QVERIFY(!processAlive(pid0) && !processAlive(pid1));
    QCOMPARE(studioSegments(), 0);
    QVERIFY(QDir(out.path()).entryList({"*.mp4"}, QDir::Files).isEmpty());
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

  void cancelLeavesNothingBehind() {
    QTemporaryDir out;
    wan_ui::RunSupervisor sup;
    QString error;
    QVERIFY2(sup.start(job(longRequest(out.path()), world2()), &error), qPrintable(error));
    QSignalSpy finished(&sup, &wan_ui::RunSupervisor::finished);
    QTRY_VERIFY_WITH_TIMEOUT(sampling(sup.ranks(), 0, 1), 120000);
    const qint64 pid0 = sup.pidOf(0), pid1 = sup.pidOf(1);
    sup.cancel();
    QVERIFY(finished.wait(20000));
    QCOMPARE(finished.front().at(0).toInt(), 9);  // kCancelled
    QVERIFY(!processAlive(pid0) && !processAlive(pid1));
    QCOMPARE(studioSegments(), 0);
    QVERIFY(QDir(out.path()).entryList(QDir::Files).isEmpty());  // no half-written output
  }

  void killedWorkerFailsTheRunCleanly() {
    QTemporaryDir out;
    wan_ui::RunSupervisor sup;
    QString error;
    QVERIFY2(sup.start(job(longRequest(out.path()), world2()), &error), qPrintable(error));
    QSignalSpy finished(&sup, &wan_ui::RunSupervisor::finished);
    QTRY_VERIFY_WITH_TIMEOUT(sampling(sup.ranks(), 1), 120000);
    const qint64 pid0 = sup.pidOf(0), pid1 = sup.pidOf(1);
    QVERIFY(pid1 > 0);
    kill(static_cast<pid_t>(pid1), SIGKILL);
    QVERIFY(finished.wait(20000));
    QVERIFY(finished.front().at(0).toInt() != 0);
    const QString message = finished.front().at(1).toString();
    QVERIFY2(message.contains("rank 1") && message.contains("signal 9"), qPrintable(message));
    QVERIFY(!processAlive(pid0) && !processAlive(pid1));
    QCOMPARE(studioSegments(), 0);
    QVERIFY(QDir(out.path()).entryList({"*.mp4"}, QDir::Files).isEmpty());
  }
};

QTEST_MAIN(TestStudio)
#include "tst_studio.moc"
