// float8 checkpoints with scales (ComfyUI's "fp8_scaled" files and the diffusers-style spelling), made
// here from the fixture DiT: read as q * s (checked against the dequantization computed here), the DiT
// forward within what fp8 rounding predicts, and every damaged kind refused by name.
#include "fp8_test_util.h"
#include "model/model_files.h"
#include "test_util.h"
#include "weights/file_util.h"
#include "weights/loader.h"
#include "weights/safetensors.h"
#include "weights/scaled_fp8.h"

using namespace wan;
using wan_test::expect_error;
using wan_test::golden;

namespace {

using wan_test::Named;
using wan_test::Quantized;
const std::string kPrefix = "model.diffusion_model.";

// The fixture DiT as a ComfyUI fp8_scaled file (fp8_test_util.h).
Quantized quantize_fixture(const std::string& scale_suffix, bool per_row, torch::ScalarType fp8) {
  return wan_test::quantize_weights(golden("dit_t2v_small") + "/diffusion_pytorch_model.safetensors", kPrefix,
                                    scale_suffix, per_row, fp8);
}

torch::Tensor dit_forward(const TensorSourcePtr& source) {
  LoadedDit dit = load_dit(source, read_text_file(golden("dit_t2v_small") + "/config.json"), ModelPlacement{});
  auto io = SafetensorsFile::open(golden("dit_t2v_small") + "/io.safetensors");
  return dit.model->forward(io->view("x").clone(), io->view("t_0").item<double>(), io->view("context_0").clone());
}

Named without(const Named& tensors, const std::string& name) {
  Named out;
  for (const auto& [n, t] : tensors)
    if (n != name) out.emplace_back(n, t);
  return out;
}

}  // namespace

class TestFp8Weights : public QObject {
  Q_OBJECT
 private slots:
  void scaledFilesReadAsTheirWeights_data() {
    QTest::addColumn<QString>("suffix");
    QTest::addColumn<bool>("per_row");
    QTest::addColumn<bool>("e5m2");
    QTest::newRow("ComfyUI scale_weight, per tensor") << "scale_weight" << false << false;
    QTest::newRow("diffusers weight_scale, per tensor") << "weight_scale" << false << false;
    QTest::newRow("scale_weight, per output row") << "scale_weight" << true << false;
    QTest::newRow("scale_weight, e5m2") << "scale_weight" << false << true;
  }
  void scaledFilesReadAsTheirWeights() {
    QFETCH(QString, suffix);
    QFETCH(bool, per_row);
    QFETCH(bool, e5m2);
    QTemporaryDir dir;
    const std::string file = dir.path().toStdString() + "/wan2.1_t2v_small_fp8_scaled.safetensors";
    const Quantized qz =
        quantize_fixture(suffix.toStdString(), per_row, e5m2 ? torch::kFloat8_e5m2 : torch::kFloat8_e4m3fn);
    write_safetensors(file, qz.file);
    const TensorSourcePtr source = open_weights(file);
    // The scales, activation scales and the marker are not weights.
    for (const std::string& n : source->names()) QVERIFY2(n.find("scale") == std::string::npos, n.c_str());
    QCOMPARE(source->names().size(), qz.original.size());
    for (const auto& [name, expected] : qz.reference) {
      const torch::Tensor got = source->view(kPrefix + name);
      QVERIFY2(torch::equal(got, expected), name.c_str());  // q * s exactly, in float32
      // Within the format's rounding of the original: half a unit of 3 (e4m3) or 2 (e5m2) mantissa bits,
      // relative to each value, so at most that much of the tensor's largest magnitude.
      const torch::Tensor w = qz.original.at(name);
      const double half_unit = e5m2 ? 0.125 : 0.0625;
      QVERIFY2((got - w).abs().max().item<double>() <= half_unit * w.abs().max().item<double>(), name.c_str());
      // What one FSDP rank dequantizes: only the rows of its range, the same values.
      const std::int64_t n = got.numel();
      for (const auto& [offset, count] :
           std::vector<std::pair<std::int64_t, std::int64_t>>{{0, n}, {n - 1, 1}, {n / 3, n / 3}, {5, n / 2}})
        QVERIFY2(
            torch::equal(source->flat_range(kPrefix + name, offset, count), got.reshape({-1}).narrow(0, offset, count)),
            name.c_str());
    }
    // The DiT forward from the fp8 file against the forward of the dequantized weights written as
    // float32: the same (the file is read as those weights), and near the reference by fp8's rounding.
    Named dequantized;
    for (const auto& [name, w] : qz.original)
      dequantized.emplace_back(name, qz.reference.count(name) ? qz.reference.at(name) : w);
    const std::string plain = dir.path().toStdString() + "/dequantized.safetensors";
    write_safetensors(plain, dequantized);
    const torch::Tensor out = dit_forward(source);
    QVERIFY(torch::allclose(out, dit_forward(open_weights(plain)), 1e-5, 1e-6));
    const double err =
        wan_test::rel_l2(out, SafetensorsFile::open(golden("dit_t2v_small") + "/io.safetensors")->view("out_0"));
    qInfo("DiT forward from fp8 (%s): relative L2 error %.4f against the fp32 reference", qPrintable(suffix), err);
    QVERIFY2(err < (e5m2 ? 0.2 : 0.1), std::to_string(err).c_str());
  }

  // The failure other engines show as white frames: a float8 weight read without its scale.
  void weightWithoutItsScaleIsRefused() {
    QTemporaryDir dir;
    const std::string file = dir.path().toStdString() + "/damaged.safetensors";
    const Quantized qz = quantize_fixture("scale_weight", false, torch::kFloat8_e4m3fn);
    write_safetensors(file, without(qz.file, kPrefix + "blocks.0.self_attn.q.scale_weight"));
    expect_error([&] { open_weights(file); }, ErrorCode::kCorruptFile,
                 {"damaged.safetensors", "blocks.0.self_attn.q.weight' has no scale", "would be read wrong"});
    // Every scale deleted, the marker kept: still refused.
    Named none;
    for (const auto& [n, t] : qz.file)
      if (n.find("scale_weight") == std::string::npos) none.emplace_back(n, t);
    write_safetensors(file, none);
    expect_error([&] { open_weights(file); }, ErrorCode::kCorruptFile, {"marked scaled_fp8"});
  }

  // Per-block scales written 2-D ([out, blocks]) read like [out, blocks, 1]; a NaN, zero or negative scale
  // is refused.
  void blockScalesAndNonFiniteScales() {
    QTemporaryDir dir;
    const std::string file = dir.path().toStdString() + "/blocks.safetensors";
    torch::manual_seed(4);
    const torch::Tensor q = (torch::randn({8, 12}) * 50).to(torch::kFloat8_e4m3fn);
    const torch::Tensor s = torch::rand({8, 3}) + 0.5;
    write_safetensors(file, {{"m.weight", q}, {"m.scale_weight", s}});
    const torch::Tensor expected = (q.to(torch::kFloat32).view({8, 3, 4}) * s.unsqueeze(2)).view({8, 12});
    QVERIFY(torch::equal(open_weights(file)->view("m.weight"), expected));
    write_safetensors(file, {{"m.weight", q}, {"m.scale_weight", torch::full({}, NAN)}});
    expect_error([&] { open_weights(file); }, ErrorCode::kCorruptFile, {"'m.scale_weight' holds NaN"});
    // A zero scale would zero the layer (white frames), a negative one flip it: refused as damage.
    for (const float bad : {0.0f, -0.5f}) {
      write_safetensors(file, {{"m.weight", q}, {"m.scale_weight", torch::full({}, bad)}});
      expect_error([&] { open_weights(file); }, ErrorCode::kCorruptFile, {"'m.scale_weight' holds zero or negative"});
    }
  }

  void scaleOfTheWrongShapeIsRefused() {
    QTemporaryDir dir;
    const std::string file = dir.path().toStdString() + "/bad_scale.safetensors";
    Quantized qz = quantize_fixture("scale_weight", false, torch::kFloat8_e4m3fn);
    for (auto& [n, t] : qz.file)
      if (n == kPrefix + "blocks.0.ffn.0.scale_weight") t = torch::ones({3, 5});
    write_safetensors(file, qz.file);
    expect_error([&] { open_weights(file); }, ErrorCode::kCorruptFile,
                 {"scale 'model.diffusion_model.blocks.0.ffn.0.scale_weight' has shape [3, 5]", "does not fit"});
  }

  // A plain float8 file (ComfyUI's fp8_e4m3fn downloads: no scales, no marker) is read as it is.
  void plainFloat8FileIsReadAsItIs() {
    QTemporaryDir dir;
    const std::string file = dir.path().toStdString() + "/plain_fp8.safetensors";
    const Quantized qz = quantize_fixture("scale_weight", false, torch::kFloat8_e4m3fn);
    Named plain;
    for (const auto& [n, t] : qz.file)
      if (n.find("scale") == std::string::npos) plain.emplace_back(n, t);
    write_safetensors(file, plain);
    const TensorSourcePtr source = open_weights(file);
    QVERIFY(!has_fp8_scales(*source));
    const std::string q = kPrefix + "blocks.0.self_attn.q.weight";
    const auto written = std::find_if(plain.begin(), plain.end(), [&](const auto& p) { return p.first == q; });
    QVERIFY(written != plain.end());
    QCOMPARE(source->info(q).dtype, StoredDType::kF8E4M3);
    QVERIFY(torch::equal(source->view(q).to(torch::kFloat32), written->second.to(torch::kFloat32)));
  }
};

QTEST_APPLESS_MAIN(TestFp8Weights)
#include "tst_fp8_weights.moc"
