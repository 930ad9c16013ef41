// The studio with the model files people use: a LoRA list in the model panel runs with the job (the
// sidecar records it), comes back with the settings of the next session, and is in the copied command
// line. (The merge itself is checked in tests/engine/tst_lora.cpp.)
#include <QFile>
#include <QJsonArray>
#include <QJsonObject>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QtTest/QtTest>

#include "config_form.h"
#include "generation_form.h"
#include "history_model.h"
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
};

QTEST_MAIN(TestStudioModels)
#include "tst_studio_models.moc"
