// LoRAs on the fixture DiT, in every key layout the engine reads: the merged weight equals
// W + strength * (alpha / rank) * B A (and W + strength * diff) computed here independently; several
// LoRAs add up; a LoRA that matches nothing, matches in part, or was made for another model size is
// refused by name with the counts or the shapes; the DiT forward runs on the merged weights.
#include <QProcess>

#include "cli_test_util.h"
#include "model/model_files.h"
#include "test_util.h"
#include "wan/job.h"
#include "weights/file_util.h"
#include "weights/loader.h"
#include "weights/lora.h"
#include "weights/name_tables.h"
#include "weights/safetensors.h"

using namespace wan;
using wan_test::expect_error;
using wan_test::golden;

namespace {

using Named = std::vector<std::pair<std::string, torch::Tensor>>;

std::string fixture_dit() { return golden("dit_t2v_small") + "/diffusion_pytorch_model.safetensors"; }

TensorSourcePtr base() { return std::make_shared<RenamedSource>(open_weights(fixture_dit()), dit_official_name); }

// A rank-4 pair for an official weight [out, in], random, seeded.
struct Pair {
  torch::Tensor down, up;  // A [r, in], B [out, r]
};
Pair random_pair(const torch::Tensor& w, std::int64_t rank, std::uint64_t seed) {
  torch::manual_seed(static_cast<std::int64_t>(seed));
  return {torch::randn({rank, w.size(1)}) * 0.1, torch::randn({w.size(0), rank}) * 0.1};
}

std::string write(const QTemporaryDir& dir, const std::string& name, const Named& tensors) {
  const std::string path = dir.path().toStdString() + "/" + name;
  write_safetensors(path, tensors);
  return path;
}

}  // namespace

class TestLora : public QObject {
  Q_OBJECT
 private slots:
  // The same low-rank change written in each layout merges to the same, independently computed weight.
  void everyLayoutMergesTheSameChange_data() {
    QTest::addColumn<QString>("layout");
    QTest::newRow("PEFT lora_A/B, official names") << "peft";
    QTest::newRow("ComfyUI diffusion_model. lora_down/up + alpha") << "comfy";
    QTest::newRow("kohya lora_unet_ flattened") << "kohya";
    QTest::newRow("diffusers transformer. attn1/ffn.net") << "diffusers";
  }
  void everyLayoutMergesTheSameChange() {
    QFETCH(QString, layout);
    QTemporaryDir dir;
    const TensorSourcePtr b = base();
    // Two targets: a self-attention projection and the FFN's first matrix.
    const std::vector<std::pair<std::string, std::string>> targets = {{"blocks.0.self_attn.q", "blocks.0.attn1.to_q"},
                                                                      {"blocks.1.ffn.0", "blocks.1.ffn.net.0.proj"}};
    const double alpha = 8.0, strength = 0.75;
    const std::int64_t rank = 4;
    Named file;
    std::map<std::string, torch::Tensor> expected;
    std::uint64_t seed = 1;
    for (const auto& [official, diffusers] : targets) {
      const torch::Tensor w = b->view(official + ".weight").to(torch::kFloat32);
      const Pair p = random_pair(w, rank, seed++);
      const bool with_alpha = layout != "peft";
      const double scale = strength * (with_alpha ? alpha / rank : 1.0);
      expected[official + ".weight"] = w + scale * torch::mm(p.up, p.down);
      std::string stem = official;
      if (layout == "comfy") stem = "diffusion_model." + official;
      if (layout == "kohya") {
        stem = "lora_unet_" + official;
        for (char& c : stem)
          if (c == '.') c = '_';
      }
      if (layout == "diffusers") stem = "transformer." + diffusers;
      const bool ab = layout == "peft" || layout == "diffusers";
      file.emplace_back(stem + (ab ? ".lora_A.weight" : ".lora_down.weight"), p.down);
      file.emplace_back(stem + (ab ? ".lora_B.weight" : ".lora_up.weight"), p.up);
      if (with_alpha) file.emplace_back(stem + ".alpha", torch::tensor(alpha));
    }
    const std::string path = write(dir, "l.safetensors", file);
    LoraMergedSource merged(b, {LoraFile{path, strength}}, false);
    QCOMPARE(merged.patched_count(), std::size_t{2});
    QCOMPARE(merged.reports().at(0).matched, file.size());
    for (const auto& [name, want] : expected) {
      const double e = wan_test::rel_l2(merged.view(name), want);
      QVERIFY2(e < 1e-6, qPrintable(QString("%1: %2").arg(name.c_str()).arg(e)));
    }
    // Untouched weights are the base's.
    QVERIFY(torch::equal(merged.view("blocks.0.self_attn.k.weight"), b->view("blocks.0.self_attn.k.weight")));
  }

  // Full-rank diffs (weight and bias, norms included; diffusers' norm2 is the official norm3), and two
  // LoRAs adding up in order.
  void diffsAndSeveralLoras() {
    QTemporaryDir dir;
    const TensorSourcePtr b = base();
    torch::manual_seed(3);
    const torch::Tensor dq = torch::randn(b->info("blocks.0.self_attn.q.weight").shape) * 0.01;
    const torch::Tensor dqb = torch::randn(b->info("blocks.0.self_attn.q.bias").shape) * 0.01;
    const torch::Tensor dn = torch::randn(b->info("blocks.0.norm3.weight").shape) * 0.01;
    const std::string a = write(
        dir, "a.safetensors",
        {{"diffusion_model.blocks.0.self_attn.q.diff", dq}, {"diffusion_model.blocks.0.self_attn.q.diff_b", dqb}});
    // A diffusers file: its blocks.0.norm2 is the official norm3 (and one attn1 key marks the layout).
    const torch::Tensor w = b->view("blocks.0.self_attn.k.weight").to(torch::kFloat32);
    const Pair p = random_pair(w, 2, 9);
    const std::string d = write(dir, "d.safetensors",
                                {{"transformer.blocks.0.norm2.diff", dn},
                                 {"transformer.blocks.0.attn1.to_k.lora_A.weight", p.down},
                                 {"transformer.blocks.0.attn1.to_k.lora_B.weight", p.up}});
    // A diff of a bare parameter (the modulation table), keyed by its own name as ComfyUI does.
    const torch::Tensor dm = torch::randn(b->info("blocks.1.modulation").shape) * 0.01;
    const std::string m = write(dir, "m.safetensors", {{"diffusion_model.blocks.1.modulation.diff", dm}});
    LoraMergedSource modulation(b, {LoraFile{m, 3.0}}, false);
    QVERIFY(wan_test::rel_l2(modulation.view("blocks.1.modulation"), b->view("blocks.1.modulation") + 3.0 * dm) < 1e-6);
    LoraMergedSource merged(b, {LoraFile{a, 0.5}, LoraFile{d, 2.0}, LoraFile{a, 0.5}}, false);
    const auto close = [](const torch::Tensor& x, const torch::Tensor& y) { return wan_test::rel_l2(x, y) < 1e-6; };
    QVERIFY(close(merged.view("blocks.0.self_attn.q.weight"), b->view("blocks.0.self_attn.q.weight") + dq));
    QVERIFY(close(merged.view("blocks.0.self_attn.q.bias"), b->view("blocks.0.self_attn.q.bias") + dqb));
    QVERIFY(close(merged.view("blocks.0.norm3.weight"), b->view("blocks.0.norm3.weight") + 2.0 * dn));
    QVERIFY(close(merged.view("blocks.0.self_attn.k.weight"), w + 2.0 * torch::mm(p.up, p.down)));
    QCOMPARE(merged.patched_count(), std::size_t{4});  // q weight, q bias, norm3, k
    // What one FSDP rank merges: only the rows of its range, the same values as the whole merge.
    for (const char* name : {"blocks.0.self_attn.q.weight", "blocks.0.self_attn.q.bias", "blocks.0.norm3.weight",
                             "blocks.0.self_attn.k.weight"}) {
      const torch::Tensor whole = merged.view(name).reshape({-1});
      const std::int64_t n = whole.numel();
      for (const auto& [offset, count] : std::vector<std::pair<std::int64_t, std::int64_t>>{
               {0, n}, {0, 1}, {n - 1, 1}, {n / 3, n / 3}, {7, std::min<std::int64_t>(n - 7, 45)}})
        QVERIFY2(close(merged.flat_range(name, offset, count), whole.narrow(0, offset, count)),
                 (std::string(name) + " at " + std::to_string(offset)).c_str());
    }
  }

  void refusesWhatDoesNotFit_data() {
    QTest::addColumn<QString>("kind");
    QTest::addColumn<bool>("allow_partial");
    QTest::addColumn<int>("code");
    QTest::addColumn<QString>("needle");
    const int mismatch = static_cast<int>(ErrorCode::kModelMismatch);
    QTest::newRow("matches nothing") << "nothing" << true << mismatch << "none of its 2 entries matches";
    QTest::newRow("matches in part") << "partial" << false << mismatch
                                     << "2 entries match DiT weights, 2 do not (lora_unet_down_blocks_0";
    QTest::newRow("another model size") << "size" << false << mismatch << "a LoRA for another model size";
    QTest::newRow("half a pair") << "half" << false << static_cast<int>(ErrorCode::kCorruptFile)
                                 << "without its up half";
    QTest::newRow("DoRA") << "dora" << false << static_cast<int>(ErrorCode::kUnsupported) << "DoRA";
    QTest::newRow("LoHa beside a LoRA") << "loha" << true << static_cast<int>(ErrorCode::kUnsupported) << "LoHa, LoKr";
    QTest::newRow("infinite alpha") << "alpha" << false << static_cast<int>(ErrorCode::kCorruptFile)
                                    << "is not a finite number";
    QTest::newRow("rank 0") << "rank0" << false << static_cast<int>(ErrorCode::kCorruptFile) << "rank 0";
    QTest::newRow("PEFT DoRA") << "peft_dora" << true << static_cast<int>(ErrorCode::kUnsupported) << "DoRA";
    QTest::newRow("alpha 0") << "alpha0" << false << static_cast<int>(ErrorCode::kCorruptFile) << "is 0";
    QTest::newRow("no entries") << "empty" << true << static_cast<int>(ErrorCode::kCorruptFile) << "no entries";
    QTest::newRow("one entry matching nothing") << "one" << false << mismatch << "none of its 1 entry matches";
  }
  void refusesWhatDoesNotFit() {
    QFETCH(QString, kind);
    QFETCH(bool, allow_partial);
    QFETCH(int, code);
    QFETCH(QString, needle);
    QTemporaryDir dir;
    const TensorSourcePtr b = base();
    const torch::Tensor w = b->view("blocks.0.self_attn.q.weight").to(torch::kFloat32);
    const Pair p = random_pair(w, 4, 5);
    Named file;
    const Named sd15 = {{"lora_unet_down_blocks_0_attn1_to_q.lora_down.weight", torch::zeros({4, 320})},
                        {"lora_unet_down_blocks_0_attn1_to_q.lora_up.weight", torch::zeros({320, 4})}};
    const Named fits = {{"blocks.0.self_attn.q.lora_A.weight", p.down}, {"blocks.0.self_attn.q.lora_B.weight", p.up}};
    if (kind == "nothing") file = sd15;
    if (kind == "partial") file = sd15, file.insert(file.end(), fits.begin(), fits.end());
    if (kind == "size")
      file = {{"blocks.0.self_attn.q.lora_A.weight", torch::zeros({4, 5120})},
              {"blocks.0.self_attn.q.lora_B.weight", torch::zeros({5120, 4})}};
    if (kind == "half") file = {fits[0]};
    if (kind == "dora") file = fits, file.emplace_back("blocks.0.self_attn.q.dora_scale", torch::ones({64, 1}));
    if (kind == "loha") file = fits, file.emplace_back("blocks.1.self_attn.q.hada_w1_a", torch::ones({64, 2}));
    if (kind == "alpha")
      file = fits, file.emplace_back("blocks.0.self_attn.q.alpha", torch::full({}, INFINITY, torch::kFloat32));
    if (kind == "peft_dora")  // PEFT writes the magnitude beside an ordinary A/B pair
      file = fits, file.emplace_back("base_model.model.blocks.0.self_attn.q.lora_magnitude_vector", torch::ones({64}));
    if (kind == "alpha0") file = fits, file.emplace_back("blocks.0.self_attn.q.alpha", torch::zeros({}));
    if (kind == "one") file = {sd15[0]};
    if (kind == "rank0")
      file = {{"blocks.0.self_attn.q.lora_A.weight", torch::zeros({0, w.size(1)})},
              {"blocks.0.self_attn.q.lora_B.weight", torch::zeros({w.size(0), 0})}};
    const std::string path = write(dir, "bad.safetensors", file);
    expect_error(
        [&] {
          LoraMergedSource(b, {LoraFile{path, 1.0}}, allow_partial);
        },
        static_cast<ErrorCode>(code), {"LoRA " + path, needle.toStdString()});
    if (kind == "partial") {  // with --lora-allow-partial the matching half is applied
      LoraMergedSource merged(b, {LoraFile{path, 1.0}}, true);
      QCOMPARE(merged.reports().at(0).unmatched, std::size_t{2});
      QVERIFY(wan_test::rel_l2(merged.view("blocks.0.self_attn.q.weight"), w + torch::mm(p.up, p.down)) < 1e-6);
    }
  }

  // A LoRA holding NaN: refused when merged (exit 4 from the CLI), nothing written; a mistyped strength
  // is named as such, not as a missing file.
  void damagedValuesAndStrengths() {
    QTemporaryDir dir;
    const TensorSourcePtr b = base();
    Pair p = random_pair(b->view("blocks.0.self_attn.q.weight").to(torch::kFloat32), 4, 13);
    p.up[3][1] = NAN;
    const std::string nan =
        write(dir, "nan.safetensors",
              {{"blocks.0.self_attn.q.lora_A.weight", p.down}, {"blocks.0.self_attn.q.lora_B.weight", p.up}});
    LoraMergedSource merged(b, {LoraFile{nan, 1.0}}, false);
    expect_error([&] { merged.view("blocks.0.self_attn.q.weight"); }, ErrorCode::kCorruptFile,
                 {"nan.safetensors", "lora_B.weight' holds NaN"});
    const QString video = dir.filePath("v.mp4");
    auto r = wan_test::run_wan(wan_test::fixture_args(wan_test::fixture())
                               << "--lora" << QString::fromStdString(nan) << "--output" << video);
    QCOMPARE(r.code, static_cast<int>(ErrorCode::kCorruptFile));
    QVERIFY(!QFileInfo::exists(video));
    // Finite entries whose product overflows float32: the sampling's NaN is caught before anything is written.
    const std::string huge = write(dir, "huge.safetensors",
                                   {{"blocks.0.self_attn.q.lora_A.weight", torch::full_like(p.down, 1e30)},
                                    {"blocks.0.self_attn.q.lora_B.weight", torch::full_like(p.up, 1e30)}});
    r = wan_test::run_wan(wan_test::fixture_args(wan_test::fixture())
                          << "--lora" << QString::fromStdString(huge) << "--output" << video);
    QCOMPARE(r.code, static_cast<int>(ErrorCode::kCorruptFile));
    QVERIFY2(wan_test::last_line(r.err).contains("NaN or infinite values, so nothing was written"), qPrintable(r.err));
    QVERIFY(!QFileInfo::exists(video));
    r = wan_test::run_wan(wan_test::fixture_args(wan_test::fixture())
                          << "--lora" << QString::fromStdString(nan) + ":abc"
                          << "--output" << video);
    QCOMPARE(r.code, static_cast<int>(ErrorCode::kInvalidArgument));
    QVERIFY2(r.err.contains("the strength 'abc' is not a number"), qPrintable(r.err));
    for (const char* odd : {":0x1", ": 1", ":inf"}) {  // no hex, no spaces, no infinity: typed decimals only
      r = wan_test::run_wan(wan_test::fixture_args(wan_test::fixture())
                            << "--lora" << QString::fromStdString(nan) + odd << "--output" << video);
      QCOMPARE(r.code, static_cast<int>(ErrorCode::kInvalidArgument));
      QVERIFY2(r.err.contains("is not a number"), qPrintable(r.err));
    }
    expect_error([&] { request_from_json(R"({"model": {"loras": [{"strength": 1}]}})"); }, ErrorCode::kInvalidArgument,
                 {"\"path\""});
    // A job file is held to the CLI's range.
    expect_error([&] { request_from_json(R"({"model": {"loras": [{"path": "x", "strength": 1000}]}})"); },
                 ErrorCode::kInvalidArgument, {"strengths from -100 to 100"});
    expect_error([&] { request_from_json(R"({"model": {"loras": [{"path": "x", "expert": "middle"}]}})"); },
                 ErrorCode::kInvalidArgument, {"unknown LoRA expert 'middle'", "high_noise"});
    QVERIFY(
        request_from_json(R"({"model": {"loras": [{"path": "x", "expert": "low_noise"}]}})").model.loras.at(0).expert ==
        LoraExpert::kLowNoise);
  }

  // `wan generate --lora`: strength 0 gives the base model's latent exactly; a LoRA changes it; the
  // sidecar records the LoRAs; a LoRA of another model is refused before loading.
  void cliPassesLorasThrough() {
    QTemporaryDir dir;
    const TensorSourcePtr b = std::make_shared<RenamedSource>(
        open_weights(wan_test::fixture().toStdString() + "/diffusion_pytorch_model.safetensors"), dit_official_name);
    const torch::Tensor w = b->view("blocks.0.self_attn.q.weight").to(torch::kFloat32);
    const Pair p = random_pair(w, 4, 11);
    const std::string lora = write(dir, "style.safetensors",
                                   {{"diffusion_model.blocks.0.self_attn.q.lora_down.weight", p.down},
                                    {"diffusion_model.blocks.0.self_attn.q.lora_up.weight", p.up}});
    const QString base_latent = dir.filePath("base.safetensors"), zero = dir.filePath("zero.safetensors"),
                  with = dir.filePath("with.safetensors");
    using wan_test::run_wan;
    auto r = run_wan(wan_test::fixture_args(wan_test::fixture()) << "--save-latent" << base_latent);
    QVERIFY2(r.code == 0, qPrintable(r.err));
    r = run_wan(wan_test::fixture_args(wan_test::fixture()) << "--lora" << QString::fromStdString(lora) + ":0"
                                                            << "--save-latent" << zero);
    QVERIFY2(r.code == 0, qPrintable(r.err));
    r = run_wan(wan_test::fixture_args(wan_test::fixture()) << "--lora" << QString::fromStdString(lora) + ":1.5"
                                                            << "--output" << dir.filePath("clip.mp4"));
    QVERIFY2(r.code == 0, qPrintable(r.err));
    const auto latent = [](const QString& f) { return SafetensorsFile::open(f.toStdString())->view("latent"); };
    QVERIFY(torch::equal(latent(zero), latent(base_latent)));
    const nlohmann::json side = nlohmann::json::parse(read_text_file(dir.filePath("clip.json").toStdString()));
    const nlohmann::json loras = side.at("request").at("model").at("loras");
    QCOMPARE(loras.size(), std::size_t{1});
    QCOMPARE(loras[0].at("path").get<std::string>(), lora);
    QCOMPARE(loras[0].at("strength").get<double>(), 1.5);
    // The model section names each LoRA's file as found, with its size.
    const nlohmann::json& found = side.at("model").at("loras").at(0);
    QCOMPARE(found.at("path").get<std::string>(), lora);
    QVERIFY(found.at("bytes").get<std::int64_t>() > 0);
    QCOMPARE(found.at("expert").get<std::string>(), std::string("both"));
    r = run_wan(wan_test::fixture_args(wan_test::fixture()) << "--lora" << QString::fromStdString(lora) + ":1.5"
                                                            << "--save-latent" << with);
    QVERIFY2(r.code == 0, qPrintable(r.err));
    QVERIFY(!torch::equal(latent(with), latent(base_latent)));
    const std::string other = write(dir, "other.safetensors", {{"lora_unet_x.lora_down.weight", torch::zeros({4, 4})}});
    r = run_wan(wan_test::fixture_args(wan_test::fixture())
                << "--lora" << QString::fromStdString(other) << "--save-latent" << dir.filePath("no.safetensors"));
    QCOMPARE(r.code, static_cast<int>(ErrorCode::kModelMismatch));
    QVERIFY2(wan_test::last_line(r.err).contains("none of its 1 entry matches"), qPrintable(r.err));
    QVERIFY(!r.err.contains("[loading]"));
  }

  // Merged before sharding: FSDP ranks of a world of 2, 3 (each rank reading its own shard) and 4 (gloo)
  // give the one-process latent.
  void shardedRunsGiveTheSameLatent() {
    QTemporaryDir dir;
    const TensorSourcePtr b = std::make_shared<RenamedSource>(
        open_weights(wan_test::fixture().toStdString() + "/diffusion_pytorch_model.safetensors"), dit_official_name);
    Named file;
    std::uint64_t seed = 21;
    for (const char* m : {"blocks.0.self_attn.q", "blocks.1.cross_attn.o", "blocks.1.ffn.2"}) {
      const Pair p = random_pair(b->view(std::string(m) + ".weight").to(torch::kFloat32), 4, seed++);
      file.emplace_back(std::string("diffusion_model.") + m + ".lora_down.weight", p.down);
      file.emplace_back(std::string("diffusion_model.") + m + ".lora_up.weight", p.up);
    }
    const QString lora = QString::fromStdString(write(dir, "l.safetensors", file)) + ":0.8";
    const auto latent = [](const QString& f) { return SafetensorsFile::open(f.toStdString())->view("latent"); };
    auto r = wan_test::run_wan(wan_test::fixture_args(wan_test::fixture())
                               << "--lora" << lora << "--save-latent" << dir.filePath("one.safetensors"));
    QVERIFY2(r.code == 0, qPrintable(r.err));
    // Without sync_module_states every rank reads (and merges) only its own shard.
    const QString own_shards = dir.filePath("own_shards.json");
    QFile f(own_shards);
    QVERIFY(f.open(QIODevice::WriteOnly) && f.write(R"({"sync_module_states": false})") > 0);
    f.close();
    for (const char* world : {"2", "3", "4"}) {
      const QString out = dir.filePath(QString("w%1.safetensors").arg(world));
      QStringList args = wan_test::fixture_args(wan_test::fixture())
                         << "--lora" << lora << "--world-size" << world << "--dit-fsdp"
                         << "--save-latent" << out;
      if (QString(world) == "3") args << "--dist-config" << own_shards;
      r = wan_test::run_wan(args);
      QVERIFY2(r.code == 0, qPrintable(r.err));
      const double e = wan_test::rel_l2(latent(out), latent(dir.filePath("one.safetensors")));
      QVERIFY2(e < 1e-5, qPrintable(QString("world %1: %2").arg(world).arg(e)));
    }
  }
};

QTEST_APPLESS_MAIN(TestLora)
#include "tst_lora.moc"
