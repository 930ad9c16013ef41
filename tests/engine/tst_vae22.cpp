// The Wan2.2 VAE (model/vae22.h) against the fixture made with the official Wan2.2 code
// (tests/data/golden22/vae22_small: encoder width 4, decoder width 6, z_dim 48, Wan2.2_VAE.pth in the
// official torch.save form): encode and decode in float32 (< 1e-4 relative L2) and with bfloat16 weights
// (< 3e-2), detection against the Wan2.1 VAE, the frame counts of a longer decode, causality of the
// chunked caches, ComfyUI's single-file layout (same names, .safetensors), strict loading and shape errors.
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>

#include "model/vae22.h"
#include "test_util.h"
#include "weights/loader.h"
#include "weights/safetensors.h"

using namespace wan;
using wan_test::expect_error;
using wan_test::rel_l2;

namespace {

std::string fixture() { return wan_test::data_dir() + "/golden22/vae22_small"; }
std::string pth() { return fixture() + "/Wan2.2_VAE.pth"; }
std::string wan21_vae() { return wan_test::golden("vae_small") + "/vae.safetensors"; }

ModelPlacement cpu(torch::ScalarType dtype) {
  return ModelPlacement::make(dtype, torch::kCPU, /*fp32_compute_on_cpu=*/true);
}

torch::Tensor io(const std::string& name) {
  return SafetensorsFile::open(fixture() + "/io.safetensors")->view(name).clone();
}

using Named = std::vector<std::pair<std::string, torch::Tensor>>;
Named read_all(const std::string& path) {
  auto src = open_weights(path);
  Named out;
  for (const std::string& n : src->names()) out.emplace_back(n, src->view(n).clone());
  return out;
}

}  // namespace

class TestVae22 : public QObject {
  Q_OBJECT
 private slots:
  void matchesReference_data() {
    QTest::addColumn<QString>("dtype");
    QTest::addColumn<double>("tolerance");
    QTest::newRow("fp32") << "fp32" << 1e-4;
    QTest::newRow("bf16") << "bf16" << 3e-2;
  }

  // encode(video) -> latent and decode(z) -> decoded of io.safetensors.
  void matchesReference() {
    QFETCH(QString, dtype);
    QFETCH(double, tolerance);
    const torch::ScalarType type = dtype == "fp32" ? torch::kFloat32 : torch::kBFloat16;
    Wan22Vae vae = load_vae22(open_weights(pth()), cpu(type));
    for (const auto& p : vae->named_parameters()) QCOMPARE(p.value().scalar_type(), type);

    const torch::Tensor latent = vae->encode(io("video"));
    const torch::Tensor ref_latent = io("latent");
    QCOMPARE(latent.sizes().vec(), ref_latent.sizes().vec());
    QCOMPARE(latent.scalar_type(), torch::kFloat32);
    const double e_enc = rel_l2(latent, ref_latent);

    const torch::Tensor decoded = vae->decode(io("z"));
    const torch::Tensor ref_decoded = io("decoded");
    QCOMPARE(decoded.sizes().vec(), ref_decoded.sizes().vec());
    QCOMPARE(decoded.scalar_type(), torch::kFloat32);
    const double e_dec = rel_l2(decoded, ref_decoded);
    qInfo("%s: encode relative L2 %.3g, decode %.3g", qPrintable(dtype), e_enc, e_dec);
    QVERIFY2(e_enc < tolerance, ("encode: relative L2 error " + std::to_string(e_enc)).c_str());
    QVERIFY2(e_dec < tolerance, ("decode: relative L2 error " + std::to_string(e_dec)).c_str());
  }

  void detectsTheConfig() {
    auto file = open_weights(pth());
    QVERIFY(is_wan22_vae(*file));
    const Vae22Config c = detect_vae22_config(*file);
    QCOMPARE(c.dim, std::int64_t(4));
    QCOMPARE(c.dec_dim, std::int64_t(6));  // differs from dim, as 160/256 in the release
    QCOMPARE(c.z_dim, std::int64_t(48));
    QCOMPARE(c.dim_mult, (std::vector<std::int64_t>{1, 2, 4, 4}));
    QCOMPARE(c.num_res_blocks, std::int64_t(2));
    QCOMPARE(c.temporal_downsample, (std::vector<bool>{false, true, true}));
    QCOMPARE(c.spatial_stride(), std::int64_t(16));
    QCOMPARE(c.temporal_stride(), std::int64_t(4));
    QCOMPARE(Vae22Config{}.dim, std::int64_t(160));
    QCOMPARE(Vae22Config{}.dec_dim, std::int64_t(256));
    // The scaling constants of vae2_2.py equal those the fixture lists in config.json.
    QFile json(QString::fromStdString(fixture() + "/config.json"));
    QVERIFY(json.open(QIODevice::ReadOnly));
    const QJsonObject cfg = QJsonDocument::fromJson(json.readAll()).object();
    const QJsonArray mean = cfg["latents_mean"].toArray(), stdev = cfg["latents_std"].toArray();
    QCOMPARE(mean.size(), 48);
    QCOMPARE(stdev.size(), 48);
    for (int i = 0; i < 48; ++i) {
      QCOMPARE(kVae22LatentMean[i], mean[i].toDouble());
      QCOMPARE(kVae22LatentStd[i], stdev[i].toDouble());
    }
  }

  void refusesTheWan21Vae() {
    auto file = open_weights(wan21_vae());
    QVERIFY(!is_wan22_vae(*file));
    expect_error([&] { detect_vae22_config(*file); }, ErrorCode::kModelMismatch,
                 {"vae.safetensors", "not a Wan2.2 VAE", "encoder.conv1.weight", "Wan2.1"});
    expect_error([&] { load_vae22(file, cpu(torch::kFloat32)); }, ErrorCode::kModelMismatch, {"not a Wan2.2 VAE"});
    // And a file that is no VAE at all.
    QTemporaryDir dir;
    const std::string other = dir.path().toStdString() + "/other.safetensors";
    write_safetensors(other, {{"blocks.0.weight", torch::zeros({2, 2})}});
    QVERIFY(!is_wan22_vae(*open_weights(other)));
    expect_error([&] { detect_vae22_config(*open_weights(other)); }, ErrorCode::kModelMismatch,
                 {"other.safetensors", "encoder.conv1.weight", "missing"});
  }

  // ComfyUI's wan2.2_vae.safetensors holds the official names (comfy/sd.py detects it by
  // decoder.upsamples.0.upsamples.0.residual.2.weight and loads it into comfy/ldm/wan/vae2_2.py, whose
  // modules are the official ones): the same tensors as a .safetensors file load and decode alike.
  void loadsTheComfyUiFile() {
    QTemporaryDir dir;
    const std::string file = dir.path().toStdString() + "/wan2.2_vae.safetensors";
    write_safetensors(file, read_all(pth()));
    auto source = open_weights(file);
    QVERIFY(is_wan22_vae(*source));
    Wan22Vae vae = load_vae22(source, cpu(torch::kFloat32));
    QVERIFY(rel_l2(vae->decode(io("z")), io("decoded")) < 1e-4);
  }

  void loadsStrictly() {
    QTemporaryDir dir;
    Named all = read_all(pth());
    // One tensor missing.
    Named missing;
    for (const auto& t : all)
      if (t.first != "decoder.upsamples.1.upsamples.3.time_conv.bias") missing.push_back(t);
    const std::string a = dir.path().toStdString() + "/missing.safetensors";
    write_safetensors(a, missing);
    expect_error([&] { load_vae22(open_weights(a), cpu(torch::kFloat32)); }, ErrorCode::kModelMismatch,
                 {"missing.safetensors", "decoder.upsamples.1.upsamples.3.time_conv.bias"});
    // One tensor too many.
    Named extra = all;
    extra.emplace_back("decoder.extra.weight", torch::zeros({3}));
    const std::string b = dir.path().toStdString() + "/extra.safetensors";
    write_safetensors(b, extra);
    expect_error([&] { load_vae22(open_weights(b), cpu(torch::kFloat32)); }, ErrorCode::kModelMismatch,
                 {"extra.safetensors", "decoder.extra.weight"});
  }

  // Decode of F latent frames gives 1 + 4(F-1) frames, one latent frame at a time; the caches make it
  // causal: the first frames do not depend on later latent frames (decode and encode).
  void decodesFrameByFrame() {
    Wan22Vae vae = load_vae22(open_weights(pth()), cpu(torch::kFloat32));
    torch::manual_seed(3);
    const torch::Tensor z = torch::randn({48, 3, 2, 2});
    std::vector<std::pair<int, int>> calls;
    const torch::Tensor video = vae->decode(z, [&](int i, int n) { calls.emplace_back(i, n); });
    QCOMPARE(video.sizes().vec(), (std::vector<std::int64_t>{3, 9, 32, 32}));
    QCOMPARE(video.scalar_type(), torch::kFloat32);
    QVERIFY(video.min().item<double>() >= -1.0 && video.max().item<double>() <= 1.0);
    QCOMPARE(calls, (std::vector<std::pair<int, int>>{{1, 3}, {2, 3}, {3, 3}}));

    const torch::Tensor first_two = vae->decode(z.narrow(1, 0, 2).clone());
    QCOMPARE(first_two.size(1), std::int64_t(5));
    QVERIFY(torch::allclose(first_two, video.narrow(1, 0, 5), 1e-5, 1e-6));
    QCOMPARE(vae->decode(z.narrow(1, 0, 1).clone()).size(1), std::int64_t(1));

    const torch::Tensor clip = torch::rand({3, 9, 32, 32}) * 2 - 1;
    const torch::Tensor latent = vae->encode(clip);
    QCOMPARE(latent.sizes().vec(), (std::vector<std::int64_t>{48, 3, 2, 2}));
    QVERIFY(torch::allclose(vae->encode(clip.narrow(1, 0, 5).clone()), latent.narrow(1, 0, 2), 1e-5, 1e-5));
    QCOMPARE(vae->encode(clip.narrow(1, 0, 1).clone()).size(1), std::int64_t(1));
  }

  void refusesWrongShapes() {
    Wan22Vae vae = load_vae22(open_weights(pth()), cpu(torch::kFloat32));
    const auto code = ErrorCode::kInvalidArgument;
    expect_error([&] { vae->encode(torch::zeros({3, 4, 32, 32})); }, code, {"4n+1", "4"});
    expect_error([&] { vae->encode(torch::zeros({3, 5, 40, 32})); }, code, {"16", "[3, 5, 40, 32]"});
    expect_error([&] { vae->encode(torch::zeros({3, 5, 32, 8})); }, code, {"16"});
    expect_error([&] { vae->encode(torch::zeros({4, 5, 32, 32})); }, code, {"[3, T, H, W]"});
    expect_error([&] { vae->encode(torch::zeros({3, 32, 32})); }, code, {"[3, T, H, W]"});
    expect_error([&] { vae->decode(torch::zeros({16, 2, 4, 4})); }, code, {"[48, F, h, w]", "[16, 2, 4, 4]"});
    expect_error([&] { vae->decode(torch::zeros({48, 4, 4})); }, code, {"[48, F, h, w]"});
    expect_error([&] { vae->decode(torch::zeros({48, 0, 4, 4})); }, code, {"[48, F, h, w]"});
  }
};

QTEST_APPLESS_MAIN(TestVae22)
#include "tst_vae22.moc"
