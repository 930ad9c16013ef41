// The model files people have, through `wan generate`: a ComfyUI models folder (diffusion_models/,
// text_encoders/, vae/) with safetensors, with a GGUF quantization of the DiT (city96's layout) and
// with an fp8_scaled DiT (both --fp8-weights modes, and `wan estimate`'s rows for them), against the
// official folder layout of the same weights.
#include <QProcess>
#include <nlohmann/json.hpp>

#include "cli_test_util.h"
#include "fp8_test_util.h"
#include "test_util.h"
#include "weights/file_util.h"
#include "weights/safetensors.h"

using wan_test::golden;

namespace {

using wan_test::fixture;
using wan_test::fixture_args;
using wan_test::last_line;
using wan_test::Run;
using wan_test::run_wan;

// A ComfyUI models folder at `root` with the pipeline fixture's text encoder and VAE, and `dit` (a file)
// in diffusion_models/ under `dit_name`.
bool make_comfy_folder(const QString& root, const QString& dit, const QString& dit_name) {
  for (const char* sub : {"diffusion_models", "text_encoders", "vae"})
    if (!QDir().mkpath(root + "/" + sub)) return false;
  return QFile::copy(dit, root + "/diffusion_models/" + dit_name) &&
         QFile::copy(fixture() + "/models_t5_umt5-xxl-enc-bf16.pth", root + "/text_encoders/umt5_small.pth") &&
         QFile::copy(fixture() + "/Wan2.1_VAE.pth", root + "/vae/wan_vae.pth") &&
         QFile::copy(fixture() + "/google/umt5-xxl/spiece.model", root + "/text_encoders/spiece.model");
}

}  // namespace

class TestCliModels : public QObject {
  Q_OBJECT
 private slots:
  // The same files in a ComfyUI models folder give the same latent as the official layout (ComfyUI
  // files have no config.json, so text_len is 512 and the heads are dim / 128 (at least 1) as in every
  // released model: the official copy here says so too); several candidates need a choice.
  void comfyUiFolder() {
    QTemporaryDir tmp;
    const QString official = tmp.filePath("official");
    QVERIFY(QDir().mkpath(official + "/google/umt5-xxl"));
    for (const char* f : {"diffusion_pytorch_model.safetensors", "models_t5_umt5-xxl-enc-bf16.pth", "Wan2.1_VAE.pth",
                          "google/umt5-xxl/spiece.model"})
      QVERIFY(QFile::copy(fixture() + "/" + f, official + "/" + f));
    nlohmann::json config = nlohmann::json::parse(wan::read_text_file(golden("t2v_pipeline_small") + "/config.json"));
    config["text_len"] = 512;
    config["num_heads"] = std::max<std::int64_t>(1, config["dim"].get<std::int64_t>() / 128);
    QFile cf(official + "/config.json");
    QVERIFY(cf.open(QIODevice::WriteOnly));
    cf.write(QByteArray::fromStdString(config.dump()));
    cf.close();
    const QString reference = tmp.filePath("official.safetensors");
    Run r = run_wan(fixture_args(official) << "--save-latent" << reference);
    QVERIFY2(r.code == 0, qPrintable(r.err));

    const QString root = tmp.filePath("models");
    for (const char* sub : {"diffusion_models", "text_encoders", "vae"}) QVERIFY(QDir().mkpath(root + "/" + sub));
    QVERIFY(QFile::copy(fixture() + "/diffusion_pytorch_model.safetensors",
                        root + "/diffusion_models/wan_small.safetensors"));
    QVERIFY(QFile::copy(fixture() + "/models_t5_umt5-xxl-enc-bf16.pth", root + "/text_encoders/umt5_small.pth"));
    QVERIFY(QFile::copy(fixture() + "/Wan2.1_VAE.pth", root + "/vae/wan_vae.pth"));
    QVERIFY(QFile::copy(fixture() + "/google/umt5-xxl/spiece.model", root + "/text_encoders/spiece.model"));
    // A file of another model family is ignored.
    wan::write_safetensors((root + "/diffusion_models/other.safetensors").toStdString(),
                           {{"unet.conv_in.weight", torch::zeros({2, 2})}});
    const QString latent = tmp.filePath("c.safetensors");
    r = run_wan(fixture_args(root) << "--save-latent" << latent);
    QVERIFY2(r.code == 0, qPrintable(r.err));
    const double e = wan_test::rel_l2(wan::SafetensorsFile::open(latent.toStdString())->view("latent"),
                                      wan::SafetensorsFile::open(reference.toStdString())->view("latent"));
    QVERIFY2(e < 1e-6, qPrintable(QString("ComfyUI layout vs official layout: %1").arg(e)));

    QVERIFY(QFile::copy(fixture() + "/diffusion_pytorch_model.safetensors",
                        root + "/diffusion_models/wan_copy.safetensors"));
    r = run_wan(fixture_args(root) << "--save-latent" << tmp.filePath("d.safetensors"));
    QCOMPARE(r.code, static_cast<int>(wan::ErrorCode::kInvalidArgument));
    QVERIFY2(
        r.err.contains("wan_copy.safetensors") && r.err.contains("wan_small.safetensors") && r.err.contains("--dit"),
        qPrintable(r.err));
    r = run_wan(fixture_args(root) << "--dit"
                                   << "wan_copy.safetensors"
                                   << "--save-latent" << tmp.filePath("d.safetensors"));
    QVERIFY2(r.code == 0, qPrintable(r.err));
  }

  // A GGUF DiT in a ComfyUI folder is found, detected and run: the latent stays within Q8_0's rounding of
  // the one the same weights give from safetensors (tst_gguf checks the forward and every block type).
  void ggufDitInAComfyUiFolder() {
    QTemporaryDir tmp;
    const QString data = QString::fromStdString(wan_test::data_dir());
    const QString st = tmp.filePath("st"), gg = tmp.filePath("gguf");
    QVERIFY(
        make_comfy_folder(st, data + "/golden/dit_t2v_small/diffusion_pytorch_model.safetensors", "wan.safetensors"));
    QVERIFY(make_comfy_folder(gg, data + "/gguf/dit_t2v_small_Q8_0.gguf", "wan-Q8_0.gguf"));
    const QString reference = tmp.filePath("st.safetensors"), latent = tmp.filePath("gg.safetensors");
    Run r = run_wan(fixture_args(st) << "--save-latent" << reference);
    QVERIFY2(r.code == 0, qPrintable(r.err));
    r = run_wan(fixture_args(gg) << "--save-latent" << latent);
    QVERIFY2(r.code == 0, qPrintable(r.err));
    const double e = wan_test::rel_l2(wan::SafetensorsFile::open(latent.toStdString())->view("latent"),
                                      wan::SafetensorsFile::open(reference.toStdString())->view("latent"));
    QVERIFY2(e > 0 && e < 0.02, qPrintable(QString("Q8_0 GGUF vs safetensors latent: %1").arg(e)));
    // Named directly with --dit too.
    r = run_wan(fixture_args(st) << "--dit" << data + "/gguf/dit_t2v_small_Q8_0.gguf"
                                 << "--save-latent" << tmp.filePath("direct.safetensors"));
    QVERIFY2(r.code == 0, qPrintable(r.err));
  }

  // An fp8_scaled DiT: dequantized at load or kept in float8, the same latent; `wan estimate` shows a
  // row for each choice, the kept one smaller.
  void fp8DitKeptOrDequantized() {
    QTemporaryDir tmp;
    const std::string fp8 = tmp.filePath("wan_fp8_scaled.safetensors").toStdString();
    wan::write_safetensors(
        fp8, wan_test::quantize_weights(golden("dit_t2v_small") + "/diffusion_pytorch_model.safetensors",
                                        "model.diffusion_model.", "scale_weight", false, torch::kFloat8_e4m3fn)
                 .file);
    const QString root = tmp.filePath("models");
    QVERIFY(make_comfy_folder(root, QString::fromStdString(fp8), "wan_fp8_scaled.safetensors"));
    const QString dequantized = tmp.filePath("dequantized.safetensors"), kept = tmp.filePath("kept.safetensors");
    Run r = run_wan(fixture_args(root) << "--save-latent" << dequantized);
    QVERIFY2(r.code == 0, qPrintable(r.err));
    r = run_wan(fixture_args(root) << "--fp8-weights"
                                   << "keep"
                                   << "--save-latent" << kept);
    QVERIFY2(r.code == 0, qPrintable(r.err));
    QVERIFY(torch::equal(wan::SafetensorsFile::open(kept.toStdString())->view("latent"),
                         wan::SafetensorsFile::open(dequantized.toStdString())->view("latent")));
    r = run_wan(fixture_args(root) << "--fp8-weights"
                                   << "half"
                                   << "--save-latent" << tmp.filePath("x.safetensors"));
    QCOMPARE(r.code, static_cast<int>(wan::ErrorCode::kInvalidArgument));
    QVERIFY2(r.err.contains("dequantize") && r.err.contains("keep"), qPrintable(r.err));

    r = run_wan({"estimate", "--model", root, "--device", "cpu", "--json"});
    QVERIFY2(r.code == 0, qPrintable(r.err));
    const nlohmann::json rows = nlohmann::json::parse(r.out.toStdString())["rows"];
    QCOMPARE(rows.size(), std::size_t(7));  // 1.3B, 14B, the A14B, TI2V-5B, the loaded model dequantized, then kept
    const nlohmann::json &first = rows[5], &second = rows[6];
    QCOMPARE(first["fp8_weights"].get<std::string>(), std::string("dequantize"));
    QCOMPARE(second["fp8_weights"].get<std::string>(), std::string("keep"));
    QCOMPARE(first["dit_on_disk"].get<std::string>(), std::string("F8_E4M3"));
    QVERIFY(first["dit_float8_params"].get<std::int64_t>() > 0);
    const auto weights = [](const nlohmann::json& row) {
      return row["cells"][0]["estimate"]["weights_bytes"].get<std::int64_t>();
    };
    QVERIFY2(weights(second) < weights(first), r.out.toUtf8().constData());
  }
};

QTEST_APPLESS_MAIN(TestCliModels)
#include "tst_cli_models.moc"
