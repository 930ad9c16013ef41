// The studio with the model files people use: a LoRA list in the model panel runs with the job (the
// sidecar records it), comes back with the settings of the next session, and is in the copied command
// line; the "keep fp8 weights" and "allow partial LoRAs" switches go with the job, the estimate and the
// command line. (The merge and the kept float8 weights are checked in tests/engine/tst_lora.cpp and
// tst_fp8_kept.cpp.)
#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLineEdit>
#include <QProgressBar>
#include <QSet>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QtTest/QtTest>

#include "config_form.h"
#include "estimate_table_model.h"
#include "generation_form.h"
#include "history_model.h"
#include "job_queue.h"
#include "main_window.h"
#include "model_panel.h"
#include "run_supervisor.h"
#include "studio_test_util.h"
#include "wan/model_info.h"

using studio_test::smallRequest;
using studio_test::WindowDirs;
using studio_test::world2;

namespace {

// A rank-2 LoRA for the demo DiT's first query projection (256 wide), written as safetensors by hand:
// an 8-byte header length, the JSON header, then the float32 data of lora_down [2, 256] and lora_up
// [256, 2].
bool write_demo_lora(const QString& path) {
  const QByteArray header =
      R"({"diffusion_model.blocks.0.self_attn.q.lora_down.weight":{"dtype":"F32","shape":[2,256],"data_offsets":[0,2048]},)"
      R"("diffusion_model.blocks.0.self_attn.q.lora_up.weight":{"dtype":"F32","shape":[256,2],"data_offsets":[2048,4096]}})";
  QByteArray bytes;
  for (int i = 0; i < 8; ++i) bytes.append(static_cast<char>((header.size() >> (8 * i)) & 0xFF));
  bytes += header;
  for (int i = 0; i < 1024; ++i) {
    const float v = 0.01f * static_cast<float>((i * 37) % 17 - 8);
    bytes.append(reinterpret_cast<const char*>(&v), 4);
  }
  QFile f(path);
  return f.open(QIODevice::WriteOnly) && f.write(bytes) == bytes.size();
}

// A copy of the demo model (links) whose DiT stores its matrices in plain float8 e4m3fn (every weight
// 0: the bytes are 0x00), written by hand from the demo's safetensors header.
bool write_fp8_demo(const QString& folder) {
  const QDir demo(QString::fromStdString(wan::demo_model_dir()));
  for (const QString& name : demo.entryList(QDir::Files | QDir::Dirs | QDir::NoDotAndDotDot))
    if (name != "diffusion_pytorch_model.safetensors" && !QFile::link(demo.filePath(name), folder + "/" + name))
      return false;
  QFile in(demo.filePath("diffusion_pytorch_model.safetensors"));
  if (!in.open(QIODevice::ReadOnly)) return false;
  const QByteArray bytes = in.readAll();
  quint64 n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<quint8>(bytes[i]);
  const QJsonObject header = QJsonDocument::fromJson(bytes.mid(8, static_cast<int>(n))).object();
  QJsonObject out;
  QByteArray data;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    QJsonObject t = it.value().toObject();
    const QJsonArray shape = t.value("shape").toArray();
    const QJsonArray offsets = t.value("data_offsets").toArray();
    QByteArray tensor = bytes.mid(static_cast<int>(8 + n + offsets[0].toInteger()),
                                  static_cast<int>(offsets[1].toInteger() - offsets[0].toInteger()));
    if (shape.size() == 2 && it.key().endsWith(".weight") && t.value("dtype").toString() == "F32") {
      t["dtype"] = "F8_E4M3";
      tensor = QByteArray(tensor.size() / 4, '\0');
    }
    t["data_offsets"] = QJsonArray{data.size(), data.size() + tensor.size()};
    data += tensor;
    out[it.key()] = t;
  }
  const QByteArray json = QJsonDocument(out).toJson(QJsonDocument::Compact);
  QByteArray file;
  for (int i = 0; i < 8; ++i) file.append(static_cast<char>((static_cast<quint64>(json.size()) >> (8 * i)) & 0xFF));
  QFile f(folder + "/diffusion_pytorch_model.safetensors");
  return f.open(QIODevice::WriteOnly) && f.write(file + json + data) == file.size() + json.size() + data.size();
}

}  // namespace

class TestStudioModels : public QObject {
  Q_OBJECT
 private slots:
  void initTestCase() { QVERIFY(studio_test::initStudioTest()); }

  void loraListRunsAndIsRemembered() {
    WindowDirs dirs;
    const QString lora = dirs.user.filePath("style.safetensors");
    QVERIFY(write_demo_lora(lora));
    {
      wan_ui::MainWindow w(dirs.options());
      QVERIFY(w.loadModel(QString::fromStdString(wan::demo_model_dir())));
      w.modelPanel()->setLoras({wan::LoraFile{lora.toStdString(), 0.5}});
      w.configForm()->setConfig(world2());
      w.generationForm()->setRequest(smallRequest(dirs.out.path()));
      w.generationForm()->setOutputFolder(dirs.out.path());
      QVERIFY(w.commandLine().contains("--lora " + lora + ":0.5"));
      QSignalSpy finished(&w, &wan_ui::MainWindow::runFinished);
      w.generate();
      QVERIFY2(w.supervisor()->isRunning(), qPrintable(w.lastMessage()));
      QVERIFY(finished.wait(240000));
      QVERIFY2(finished.front().front().toInt() == 0, qPrintable(w.lastMessage()));
      const QJsonArray loras = w.historyModel()
                                   ->settingsAt(0)
                                   .value("request")
                                   .toObject()
                                   .value("model")
                                   .toObject()
                                   .value("loras")
                                   .toArray();
      QCOMPARE(loras.size(), 1);
      QCOMPARE(loras[0].toObject().value("path").toString(), lora);
      QCOMPARE(loras[0].toObject().value("strength").toDouble(), 0.5);
      QVERIFY(w.close());  // closing saves the settings
    }
    wan_ui::MainWindow again(dirs.options());
    const std::vector<wan::LoraFile> kept = again.modelPanel()->loras();
    QCOMPARE(kept.size(), std::size_t{1});
    QCOMPARE(QString::fromStdString(kept[0].path), lora);
    QCOMPARE(kept[0].strength, 0.5);
  }

  // "Keep fp8 weights" is offered for a model with float8 weights only; checked, it lowers the estimate
  // and goes with the job, the command line and the next session, as "allow partial" does.
  void loadSwitchesGoWithTheJob() {
    WindowDirs dirs;
    QTemporaryDir fp8;
    QVERIFY(write_fp8_demo(fp8.path()));
    {
      wan_ui::MainWindow w(dirs.options());
      QVERIFY(w.loadModel(QString::fromStdString(wan::demo_model_dir())));
      auto* keep = w.modelPanel()->findChild<QCheckBox*>("keepFp8Check");
      auto* partial = w.modelPanel()->findChild<QCheckBox*>("loraAllowPartialCheck");
      QVERIFY(keep && partial);
      QVERIFY(!keep->isEnabled());  // the demo's weights are float32
      QVERIFY2(w.loadModel(fp8.path()), qPrintable(w.lastMessage()));
      QVERIFY(keep->isEnabled());
      w.generationForm()->setRequest(smallRequest(dirs.out.path()));
      w.generationForm()->setOutputFolder(dirs.out.path());
      const int loaded = w.estimateModel()->rowCount() - 1;
      const QString before = w.estimateModel()->index(loaded, 0).data(Qt::ToolTipRole).toString();
      keep->setChecked(true);
      partial->setChecked(true);
      QVERIFY(w.estimateModel()->index(loaded, 0).data(Qt::ToolTipRole).toString() != before);
      QVERIFY(w.commandLine().contains("--lora-allow-partial"));
      QVERIFY(w.commandLine().contains("--fp8-weights keep"));
      w.addToQueue();
      QCOMPARE(w.queue()->size(), 1);
      QVERIFY(w.queue()->at(0).job.request.fp8_weights == wan::Fp8Weights::kKeep);
      QVERIFY(w.queue()->at(0).job.request.model.lora_allow_partial);
      QVERIFY(w.close());
    }
    wan_ui::MainWindow again(dirs.options());
    QVERIFY(again.modelPanel()->fp8Weights() == wan::Fp8Weights::kKeep);
    QVERIFY(again.modelPanel()->loraAllowPartial());
  }

  // Wan2.2 A14B (the official-layout fixture): the high-noise guidance and the boundary appear, go with the
  // job and the command line, and the estimate counts both experts.
  // Issue 21: a LoRA whose name says it is step-distilled gets the "4-step (distilled)" suggestion; the
  // sampler's defaults show, and the job and command line carry it.
  void distillSamplerIsOffered() {
    WindowDirs dirs;
    wan_ui::MainWindow w(dirs.options());
    QVERIFY(w.loadModel(QString::fromStdString(wan::demo_model_dir())));
    QVERIFY(w.generationForm()->distillHint().isEmpty());
    const QString lora = dirs.user.filePath("wan2.1_t2v_lightx2v_4step_lora.safetensors");
    QVERIFY(write_demo_lora(lora));
    w.modelPanel()->setLoras({wan::LoraFile{lora.toStdString(), 1.0, wan::LoraExpert::kBoth}});
    QVERIFY2(w.generationForm()->distillHint().contains("wan2.1_t2v_lightx2v_4step_lora.safetensors"),
             qPrintable(w.generationForm()->distillHint()));
    auto* sampler = w.generationForm()->findChild<QComboBox*>("sampler");
    auto* steps = w.generationForm()->findChild<QSpinBox*>("steps");
    auto* guidance = w.generationForm()->findChild<QDoubleSpinBox*>("guidance");
    QVERIFY(sampler && steps && guidance);
    QCOMPARE(sampler->itemText(sampler->findData("distill")), QString("4-step (distilled)"));
    sampler->setCurrentIndex(sampler->findData("distill"));
    QVERIFY(w.generationForm()->distillHint().isEmpty());  // chosen: nothing left to suggest
    QCOMPARE(steps->specialValueText(), QString("default (4)"));
    QCOMPARE(guidance->specialValueText(), QString("default (1)"));
    wan::GenerationRequest r = smallRequest(dirs.out.path());
    r.model = {};
    r.sampler = wan::SamplerKind::kDistill;
    r.steps.reset();  // the list is the steps
    r.denoising_step_list = {1000, 500};
    w.generationForm()->setRequest(r);
    w.generationForm()->setOutputFolder(dirs.out.path());
    QVERIFY2(w.commandLine().contains("--sampler distill --denoising-step-list 1000,500"), qPrintable(w.commandLine()));
    w.addToQueue();
    QCOMPARE(w.queue()->size(), 1);
    QVERIFY(w.queue()->at(0).job.request.sampler == wan::SamplerKind::kDistill);
    QCOMPARE(w.queue()->at(0).job.request.denoising_step_list, (std::vector<int>{1000, 500}));
    // The step cache: chosen in the form, it goes with the job and the command line.
    auto* cache = w.generationForm()->findChild<QComboBox*>("stepCache");
    auto* threshold = w.generationForm()->findChild<QDoubleSpinBox*>("stepCacheThreshold");
    QVERIFY(cache && threshold);
    QVERIFY(!threshold->isEnabled());
    cache->setCurrentIndex(cache->findData("magcache"));
    QCOMPARE(threshold->value(), 0.12);  // MagCache's Wan2.1 default as a start
    threshold->setValue(0.2);
    QVERIFY2(w.commandLine().contains("--cache magcache:0.2"), qPrintable(w.commandLine()));
    QCOMPARE(QString::fromStdString(wan::step_cache_name(w.generationForm()->request().cache)),
             QString("magcache:0.2"));
    wan::GenerationRequest restored = w.generationForm()->request();
    restored.cache = wan::parse_step_cache("teacache:0.1:3");
    w.generationForm()->setRequest(restored);  // a history entry's warm-up is kept
    QCOMPARE(QString::fromStdString(wan::step_cache_name(w.generationForm()->request().cache)),
             QString("teacache:0.1:3"));
    restored.cache = wan::parse_step_cache("teacache:0");  // restored as it was, not with a start value
    w.generationForm()->setRequest(restored);
    QCOMPARE(QString::fromStdString(wan::step_cache_name(w.generationForm()->request().cache)), QString("teacache:0"));
    cache->setCurrentIndex(cache->findData("none"));
    QVERIFY(!w.generationForm()->request().cache.enabled());
    // Back to UniPC: the suggestion returns; a model without such names has none.
    sampler->setCurrentIndex(sampler->findData("unipc"));
    QVERIFY(!w.generationForm()->distillHint().isEmpty());
    w.modelPanel()->setLoras({});
    QVERIFY(w.generationForm()->distillHint().isEmpty());
  }

  void expertFieldsForWan22() {
    WindowDirs dirs;
    wan_ui::MainWindow w(dirs.options());
    QVERIFY(w.loadModel(QString::fromStdString(wan::demo_model_dir())));
    auto* high = w.generationForm()->findChild<QDoubleSpinBox*>("guidanceHigh");
    auto* boundary = w.generationForm()->findChild<QDoubleSpinBox*>("boundary");
    QVERIFY(high && boundary);
    QVERIFY(!high->isVisibleTo(w.generationForm()));
    const QString moe = QString(WAN_TEST_DATA_DIR) + "/golden22/t2v_moe_pipeline_small";
    QVERIFY2(w.loadModel(moe), qPrintable(w.lastMessage()));
    QVERIFY(w.modelPanel()->info()->moe);
    QCOMPARE(w.modelPanel()->info()->dims.experts, 2);
    QVERIFY(high->isVisibleTo(w.generationForm()));
    wan::GenerationRequest r = smallRequest(dirs.out.path());
    r.model = {};
    r.guidance = 2.5;
    r.guidance_high = 6.0;
    r.boundary = 0.9;
    w.generationForm()->setRequest(r);
    w.generationForm()->setOutputFolder(dirs.out.path());
    QVERIFY2(w.commandLine().contains("--guidance 2.5,6 --boundary 0.9"), qPrintable(w.commandLine()));
    w.addToQueue();
    QCOMPARE(w.queue()->size(), 1);
    QCOMPARE(w.queue()->at(0).job.request.guidance_high.value(), 6.0);
    QCOMPARE(w.queue()->at(0).job.request.boundary.value(), 0.9);
    // The idle expert's switch goes with the config and the command line.
    auto* idle = w.configForm()->findChild<QCheckBox*>("idle_expert_on_host");
    QVERIFY(idle);
    idle->setChecked(true);
    QVERIFY(w.configForm()->config().idle_expert_on_host);
    QVERIFY2(w.commandLine().contains("--idle-expert-on-host"), qPrintable(w.commandLine()));
    idle->setChecked(false);

    // LoRAs: the Expert column appears for A14B; a high-noise LoRA goes with the job and the command line.
    const QString lora = dirs.user.filePath("style_high_noise.safetensors");
    QVERIFY(write_demo_lora(lora));
    w.modelPanel()->setLoras({wan::LoraFile{lora.toStdString(), 0.5, wan::LoraExpert::kHighNoise},
                              wan::LoraFile{lora.toStdString(), 0.25, wan::LoraExpert::kBoth}});
    auto* table = w.modelPanel()->findChild<QTableWidget*>("loraTable");
    QVERIFY(table && !table->isColumnHidden(2));
    QVERIFY2(w.commandLine().contains("--lora-high " + lora + ":0.5 --lora " + lora + ":0.25"),
             qPrintable(w.commandLine()));
    auto* expert = qobject_cast<QComboBox*>(table->cellWidget(1, 2));
    QVERIFY(expert);
    expert->setCurrentIndex(expert->findText("Low noise"));
    QVERIFY(w.modelPanel()->loras().at(1).expert == wan::LoraExpert::kLowNoise);
    w.addToQueue();
    QCOMPARE(w.queue()->size(), 2);
    const std::vector<wan::LoraFile>& queued = w.queue()->at(1).job.request.model.loras;
    QVERIFY(queued.size() == 2 && queued[0].expert == wan::LoraExpert::kHighNoise &&
            queued[1].expert == wan::LoraExpert::kLowNoise);
    // A one-DiT model hides the column; its run takes every LoRA for its one DiT.
    QVERIFY(w.loadModel(QString::fromStdString(wan::demo_model_dir())));
    QVERIFY(table->isColumnHidden(2));
    QVERIFY(w.modelPanel()->loras().at(0).expert == wan::LoraExpert::kBoth);
    QVERIFY(!w.commandLine().contains("--lora-high"));
  }

  // Wan2.2 TI2V-5B (the official-layout fixture): the start picture is there but optional; with one
  // the size is the largest area and the video's size TI2V's (multiples of 32); the defaults are TI2V's
  // in both modes (50 steps, not image-to-video's 40); a text-only and an image run both queue.
  void ti2vTakesAnOptionalPicture() {
    WindowDirs dirs;
    wan_ui::MainWindow w(dirs.options());
    const QString ti2v = QString(WAN_TEST_DATA_DIR) + "/golden22/ti2v_pipeline_small";
    QVERIFY2(w.loadModel(ti2v), qPrintable(w.lastMessage()));
    QVERIFY(w.modelPanel()->info()->dims.ti2v);
    auto* image = w.generationForm()->findChild<QLineEdit*>("startImage");
    auto* steps = w.generationForm()->findChild<QSpinBox*>("steps");
    QVERIFY(image && image->isEnabled() && steps);
    wan::GenerationRequest r = smallRequest(dirs.out.path());
    r.model = {};
    r.width = 96;
    r.height = 64;
    w.generationForm()->setRequest(r);
    w.generationForm()->setOutputFolder(dirs.out.path());
    QVERIFY(!w.commandLine().contains("--image"));
    w.addToQueue();
    QCOMPARE(w.queue()->size(), 1);
    QVERIFY(w.queue()->at(0).job.request.image.empty());
    const QString picture = ti2v + "/input.png";  // 100 x 70
    w.generationForm()->setStartImage(picture);
    QCOMPARE(w.generationForm()->videoSize(), QSize(96, 64));  // best_output_size, not the I2V rule
    QVERIFY(steps->specialValueText().contains("50"));
    QVERIFY2(w.commandLine().contains("--image " + picture), qPrintable(w.commandLine()));
    w.addToQueue();
    QCOMPARE(w.queue()->size(), 2);
    QCOMPARE(QString::fromStdString(w.queue()->at(1).job.request.image), picture);
  }

  // A tiny Wan2.2 A14B-style demo (two experts) runs over two ranks from the window; the rank bars name
  // the expert of each step; the sidecar keeps the guidance pair and the boundary.
  void wan22DemoRunsOverTwoRanks() {
    WindowDirs dirs;
    const QString moe = QString::fromStdString(wan::demo_moe_model_dir());
    wan_ui::MainWindow w(dirs.options());
    QVERIFY2(w.loadModel(moe), qPrintable(w.lastMessage()));
    QVERIFY(w.modelPanel()->info()->moe);
    w.configForm()->setConfig(world2());
    wan::GenerationRequest r = smallRequest(dirs.out.path());
    r.model = {};
    r.steps = 8;  // shift 12: the first steps run the high-noise expert, the last the low-noise one
    // With MagCache (warm-up 2, no bound on skips in a row): steps after each expert's window skip blocks.
    r.cache = wan::parse_step_cache("magcache:5:2:100");
    w.generationForm()->setRequest(r);
    w.generationForm()->setOutputFolder(dirs.out.path());
    QSet<QString> seen;
    connect(w.supervisor(), &wan_ui::RunSupervisor::ranksUpdated, this, [&] {
      for (const wan::RankStatus& s : w.supervisor()->ranks())
        if (!s.detail.empty()) seen.insert(QString::fromStdString(s.detail));
      for (QProgressBar* bar : w.findChildren<QProgressBar*>())
        if (bar->format().contains("expert")) seen.insert("bar: " + bar->format().section('(', 1).section(')', 0, 0));
    });
    QSignalSpy finished(&w, &wan_ui::MainWindow::runFinished);
    w.generate();
    QVERIFY2(w.supervisor()->isRunning(), qPrintable(w.lastMessage()));
    QVERIFY(finished.wait(240000));
    QVERIFY2(finished.front().front().toInt() == 0, qPrintable(w.lastMessage()));
    const auto saw = [&](const QString& prefix) {
      for (const QString& s : seen)
        if (s.startsWith(prefix)) return true;
      return false;
    };
    QVERIFY2(saw("high-noise expert") && saw("bar: high-noise expert"),
             qPrintable(QStringList(seen.values()).join(", ")));
    const QJsonObject settings = w.historyModel()->settingsAt(0);
    const QJsonObject request = settings.value("request").toObject();
    QCOMPARE(request.value("guidance_high").toDouble(), 4.0);
    QCOMPARE(request.value("boundary").toDouble(), 0.875);
    // The cache went with the job; the run records the steps whose blocks came from it.
    QCOMPARE(request.value("cache").toString(), QString("magcache:5:2:100"));
    QVERIFY(!settings.value("sampling").toObject().value("cached_steps").toArray().isEmpty());
  }
};

QTEST_MAIN(TestStudioModels)
#include "tst_studio_models.moc"
