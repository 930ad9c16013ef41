// Loading the three networks from an official-layout folder (.safetensors + torch .pth) and from
// ComfyUI-style single files (prefixed DiT keys, HF-named umT5 with an embedded tokenizer), plus the
// strict loader's errors. Every file here is written by the engine's own writers.
#include <fstream>

#include "model/model_files.h"
#include "test_util.h"
#include "weights/file_util.h"
#include "weights/loader.h"
#include "weights/name_tables.h"
#include "weights/pth_file.h"
#include "weights/safetensors.h"

using namespace wan;
using wan_test::expect_error;
using wan_test::golden;

namespace {

using Named = std::vector<std::pair<std::string, torch::Tensor>>;

Named read_all(const std::string& path, const std::function<std::string(const std::string&)>& rename = {}) {
  auto src = open_weights(path);
  Named out;
  for (const std::string& n : src->names()) out.emplace_back(rename ? rename(n) : n, src->view(n).clone());
  return out;
}

// Official name -> HF/ComfyUI umT5 name (the inverse of the engine's table, written independently).
std::string hf_t5_name(const std::string& n) {
  if (n == "token_embedding.weight") return "shared.weight";
  if (n == "norm.weight") return "encoder.final_layer_norm.weight";
  const auto dot = n.find('.', 7);
  const std::string i = n.substr(7, dot - 7), rest = n.substr(dot + 1);
  const std::string b = "encoder.block." + i + ".layer.";
  if (rest == "norm1.weight") return b + "0.layer_norm.weight";
  if (rest.rfind("attn.", 0) == 0) return b + "0.SelfAttention." + rest.substr(5);
  if (rest == "pos_embedding.embedding.weight") return b + "0.SelfAttention.relative_attention_bias.weight";
  if (rest == "norm2.weight") return b + "1.layer_norm.weight";
  if (rest == "ffn.gate.0.weight") return b + "1.DenseReluDense.wi_0.weight";
  if (rest == "ffn.fc1.weight") return b + "1.DenseReluDense.wi_1.weight";
  if (rest == "ffn.fc2.weight") return b + "1.DenseReluDense.wo.weight";
  return n;
}

torch::Tensor t5_reference_out(const std::string& file) {
  LoadedT5 t5 = load_t5(open_weights(file), ModelPlacement{});
  auto io = SafetensorsFile::open(golden("t5_small") + "/io.safetensors");
  const auto valid = io->view("mask_1").sum().item<std::int64_t>();
  return t5.model->forward(io->view("ids_1").narrow(0, 0, valid).clone());
}

torch::Tensor dit_out(LoadedDit& dit) {
  auto io = SafetensorsFile::open(golden("dit_t2v_small") + "/io.safetensors");
  return dit.model->forward(io->view("x").clone(), io->view("t_0").item<double>(), io->view("context_0").clone());
}

}  // namespace

class TestModelLoading : public QObject {
  Q_OBJECT
 private slots:
  void officialFolderLayout() {
    QTemporaryDir dir;
    const std::string d = dir.path().toStdString();
    // T5 and VAE as torch.save pickles, as the official release ships them.
    write_pth(d + "/models_t5_umt5-xxl-enc-bf16.pth", read_all(golden("t5_small") + "/t5_encoder.safetensors"));
    write_pth(d + "/Wan2.1_VAE.pth", read_all(golden("vae_small") + "/vae.safetensors"));
    auto io = SafetensorsFile::open(golden("t5_small") + "/io.safetensors");
    const double t5_err = wan_test::rel_l2(t5_reference_out(d + "/models_t5_umt5-xxl-enc-bf16.pth"), io->view("out_1"));
    QVERIFY2(t5_err < 1e-4, std::to_string(t5_err).c_str());

    LoadedVae vae = load_vae(open_weights(d + "/Wan2.1_VAE.pth"), ModelPlacement{});
    QCOMPARE(vae.config.dim, std::int64_t(8));
    QCOMPARE(vae.config.temporal_downsample, (std::vector<bool>{false, true, true}));
    auto vio = SafetensorsFile::open(golden("vae_small") + "/io.safetensors");
    const double vae_err = wan_test::rel_l2(vae.decode(vio->view("z").clone()), vio->view("decoded"));
    QVERIFY2(vae_err < 1e-4, std::to_string(vae_err).c_str());

    LoadedDit dit = load_dit(open_weights(golden("dit_t2v_small") + "/diffusion_pytorch_model.safetensors"),
                             read_text_file(golden("dit_t2v_small") + "/config.json"), ModelPlacement{});
    QVERIFY(wan_test::rel_l2(dit_out(dit),
                             SafetensorsFile::open(golden("dit_t2v_small") + "/io.safetensors")->view("out_0")) < 1e-4);
  }

  void comfyPrefixedHalfPrecisionDit() {
    QTemporaryDir dir;
    const std::string file = dir.path().toStdString() + "/wan2.1_t2v_small_fp16.safetensors";
    Named tensors = read_all(golden("dit_t2v_small") + "/diffusion_pytorch_model.safetensors",
                             [](const std::string& n) { return "model.diffusion_model." + n; });
    for (auto& [n, t] : tensors) t = t.to(torch::kFloat16);
    write_safetensors(file, tensors);
    // No config.json: sizes from the tensors.
    const DitConfig detected = detect_dit_config(RenamedSource(open_weights(file), dit_official_name));
    QCOMPARE(detected.dim, std::int64_t(64));
    QCOMPARE(detected.ffn_dim, std::int64_t(128));
    QCOMPARE(detected.num_layers, std::int64_t(2));
    QCOMPARE(detected.text_dim, std::int64_t(32));
    QCOMPARE(detected.freq_dim, std::int64_t(32));
    QCOMPARE(detected.in_dim, std::int64_t(16));
    QCOMPARE(detected.out_dim, std::int64_t(16));
    QCOMPARE(detected.text_len, std::int64_t(512));
    QVERIFY(detected.kind == DitKind::kT2V);
    // With the fixture's config the prefixed fp16 file gives the reference result up to fp16 rounding.
    LoadedDit dit =
        load_dit(open_weights(file), read_text_file(golden("dit_t2v_small") + "/config.json"), ModelPlacement{});
    const double err = wan_test::rel_l2(
        dit_out(dit), SafetensorsFile::open(golden("dit_t2v_small") + "/io.safetensors")->view("out_0"));
    QVERIFY2(err < 3e-3, std::to_string(err).c_str());
  }

  void comfyI2vDitIsDetectedAndRuns() {
    // A small i2v model written by our code (head_dim 128 as released models: dim 256, 2 heads).
    DitConfig c;
    c.kind = DitKind::kI2V;
    c.dim = 256;
    c.num_heads = 2;
    c.num_layers = 1;
    c.ffn_dim = 64;
    c.freq_dim = 16;
    c.text_dim = 24;
    c.in_dim = 36;
    c.clip_dim = 48;
    c.text_len = 512;
    WanModel model(c, ModelPlacement{});
    Named tensors;
    torch::manual_seed(3);
    for (const auto& p : model->named_parameters())
      tensors.emplace_back("model.diffusion_model." + p.key(), torch::randn(p.value().sizes()) * 0.05);
    QTemporaryDir dir;
    const std::string file = dir.path().toStdString() + "/wan_i2v_tiny_bf16.safetensors";
    for (auto& [n, t] : tensors) t = t.to(torch::kBFloat16);
    write_safetensors(file, tensors);
    LoadedDit dit = load_dit(open_weights(file), "", ModelPlacement{});
    QVERIFY(dit.config.kind == DitKind::kI2V);
    QCOMPARE(dit.config.num_heads, std::int64_t(2));
    QCOMPARE(dit.config.clip_dim, std::int64_t(48));
    QCOMPARE(dit.config.in_dim, std::int64_t(36));
    auto x = torch::randn({16, 2, 4, 6}), y = torch::randn({20, 2, 4, 6});
    auto out = dit.model->forward(x, 999, torch::randn({5, 24}), torch::randn({1, 257, 48}), y);
    QCOMPARE(out.sizes(), x.sizes());
    QVERIFY(torch::isfinite(out).all().item<bool>());
    expect_error(
        [&] {
          dit.model->forward(x, 999, torch::randn({5, 24}), {}, y);
        },
        ErrorCode::kInvalidArgument, {"CLIP"});
    expect_error(
        [&] {
          dit.model->forward(x, 999, torch::randn({5, 24}));
        },
        ErrorCode::kInvalidArgument, {"[36, F, H, W]"});
  }

  void comfyHfNamedUmt5WithEmbeddedTokenizer() {
    QTemporaryDir dir;
    const std::string file = dir.path().toStdString() + "/umt5_xxl_small_fp16.safetensors";
    Named tensors = read_all(golden("t5_small") + "/t5_encoder.safetensors", hf_t5_name);
    const std::string proto = read_text_file(golden("t2v_pipeline_small") + "/google/umt5-xxl/spiece.model");
    tensors.emplace_back("spiece_model", torch::from_blob(const_cast<char*>(proto.data()),
                                                          {static_cast<std::int64_t>(proto.size())}, torch::kUInt8)
                                             .clone());
    tensors.emplace_back("encoder.embed_tokens.weight", tensors.front().second.clone());
    write_safetensors(file, tensors);
    LoadedT5 t5 = load_t5(open_weights(file), ModelPlacement{});
    QVERIFY(t5.embedded_tokenizer != nullptr);
    QCOMPARE(t5.config.num_layers, std::int64_t(2));
    QCOMPARE(t5.config.num_heads, std::int64_t(4));
    auto io = SafetensorsFile::open(golden("t5_small") + "/io.safetensors");
    QVERIFY(wan_test::rel_l2(t5_reference_out(file), io->view("out_1")) < 1e-4);
    // The embedded tokenizer is the pipeline fixture's: same ids for the same prompt.
    auto pio = SafetensorsFile::open(golden("t2v_pipeline_small") + "/io.safetensors");
    const auto ids = t5.embedded_tokenizer->encode("a red fox runs through the snowy forest at dawn", 16).ids;
    QVERIFY(torch::equal(torch::tensor(ids), pio->view("ids_prompt")));
  }

  void strictLoadNamesMissingUnexpectedAndMisshapedTensors() {
    QTemporaryDir dir;
    const std::string d = dir.path().toStdString();
    Named base = read_all(golden("t5_small") + "/t5_encoder.safetensors");
    Named missing2;
    for (auto& p : base)
      if (p.first != "blocks.1.attn.k.weight") missing2.push_back(p);
    write_safetensors(d + "/missing.safetensors", missing2);
    expect_error([&] { load_t5(open_weights(d + "/missing.safetensors"), ModelPlacement{}); },
                 ErrorCode::kModelMismatch, {"missing.safetensors", "missing 1 tensor", "blocks.1.attn.k.weight"});
    Named extra = base;
    extra.emplace_back("blocks.0.attn.extra_bias", torch::zeros({4}));
    write_safetensors(d + "/extra.safetensors", extra);
    expect_error([&] { load_t5(open_weights(d + "/extra.safetensors"), ModelPlacement{}); }, ErrorCode::kModelMismatch,
                 {"extra.safetensors", "unexpected 1 tensor", "blocks.0.attn.extra_bias"});
    Named bad = base;
    for (auto& [n, t] : bad)
      if (n == "blocks.1.ffn.fc2.weight") t = torch::zeros({32, 60});
    write_safetensors(d + "/shape.safetensors", bad);
    expect_error([&] { load_t5(open_weights(d + "/shape.safetensors"), ModelPlacement{}); }, ErrorCode::kModelMismatch,
                 {"shape.safetensors", "blocks.1.ffn.fc2.weight", "[32, 60]", "[32, 64]"});
    // A VAE file handed to the DiT loader
    expect_error([&] { load_dit(open_weights(golden("vae_small") + "/vae.safetensors"), "", ModelPlacement{}); },
                 ErrorCode::kModelMismatch, {"vae.safetensors", "not a Wan2.1 DiT"});
    // config.json that disagrees with the weights
    expect_error(
        [&] {
          load_dit(open_weights(golden("dit_t2v_small") + "/diffusion_pytorch_model.safetensors"),
                   R"({"model_type": "t2v", "dim": 96, "num_heads": 4, "num_layers": 2, "ffn_dim": 128, "freq_dim": 32,
                   "text_dim": 32, "in_dim": 16, "out_dim": 16, "text_len": 16})",
                   ModelPlacement{});
        },
        ErrorCode::kModelMismatch, {"diffusion_pytorch_model.safetensors", "expects"});
  }
};

QTEST_APPLESS_MAIN(TestModelLoading)
#include "tst_model_loading.moc"
