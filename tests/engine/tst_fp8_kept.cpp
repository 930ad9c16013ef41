// Fp8Weights::kKeep (--fp8-weights keep): the Linear weights a file stores in float8 stay float8 in
// memory with their scales, and each layer dequantizes its weight as it runs. Checked against the
// dequantizing load: the same forward bit for bit (DiT and umT5, scaled and plain, e4m3 and e5m2), a
// quarter of the matrices' float32 bytes, weights a LoRA patches merged as before, FSDP ranks giving the
// one-process result; and the pipeline fixture sampled from an fp8_scaled copy of its DiT: the latent of
// the same run on the dequantized weights written as float32 (the error fp8 rounding alone predicts),
// in both modes; that copy with its scales deleted refused before anything runs.
#include <filesystem>

#include "dist/fsdp.h"
#include "dist/rank_runtime.h"
#include "dist_test_util.h"
#include "fp8_test_util.h"
#include "model/model_files.h"
#include "pipeline/text_to_video.h"
#include "wan/eval_case.h"
#include "weights/file_util.h"
#include "weights/lora.h"
#include "weights/name_tables.h"
#include "weights/safetensors.h"

using namespace wan;
using wan_test::expect_error;
using wan_test::golden;
using wan_test::Named;
using wan_test::Quantized;

namespace {

const std::string kPrefix = "model.diffusion_model.";

std::string dit_fixture(const std::string& c) { return golden(c) + "/diffusion_pytorch_model.safetensors"; }

ModelPlacement kept() {
  ModelPlacement p;
  p.keep_float8 = true;
  return p;
}

std::int64_t parameter_bytes(torch::nn::Module& m) {
  std::int64_t n = 0;
  for (const auto& p : m.named_parameters(true))
    n += p.value().numel() * static_cast<std::int64_t>(p.value().element_size());
  return n;
}

torch::Tensor forward(LoadedDit& dit) {
  auto io = SafetensorsFile::open(golden("dit_t2v_small") + "/io.safetensors");
  return dit.model->forward(io->view("x").clone(), io->view("t_0").item<double>(), io->view("context_0").clone());
}

std::string dit_config() { return read_text_file(golden("dit_t2v_small") + "/config.json"); }

// The fixture's whole sampling loop in one process (as eval-case runs it); `dist` > 1 rank: every
// rank as the worker runs it (RankRuntime), rank 0's final latent.
torch::Tensor sample(const GenerationRequest& r, const std::string& dist_json = "") {
  const RunPlan plan = make_plan(r, DistConfig{}, /*require_output=*/false);
  const torch::Tensor noise = initial_noise(plan);
  if (dist_json.empty()) {
    const TextContexts text = encode_prompts(plan);
    WanModel dit = load_plan_dit(plan);
    return denoise(plan, dit, text, noise);
  }
  DistConfig dist = dist_config_from_json(dist_json);
  dist.backend = resolve_backend(dist, Device{});
  std::vector<torch::Tensor> finals(dist.world_size);
  const auto errors = wan_test::run_world(dist.world_size, std::chrono::seconds(120), [&](Communicator& world) {
    RankRuntime runtime(world, dist);
    const RankHooks hooks = runtime.hooks(world.rank() == 0);
    const TextContexts text = encode_prompts(plan, hooks.t5_sharding);
    WanModel dit = load_plan_dit(plan, hooks.dit_sharding);
    finals[world.rank()] =
        denoise(plan, dit, text, noise.clone(), {}, hooks.make_velocity(dit, text, {}, plan.request.guidance.value()));
  });
  for (const std::string& e : errors)
    if (!e.empty()) throw std::runtime_error(e);
  return finals[0];
}

// A copy of the pipeline fixture's folder (links) whose DiT is `dit`.
void folder_with_dit(const std::string& to, const Named& dit) {
  wan_test::link_folder(golden("t2v_pipeline_small"), to, {"diffusion_pytorch_model.safetensors"});
  write_safetensors(to + "/diffusion_pytorch_model.safetensors", dit);
}

}  // namespace

class TestFp8Kept : public QObject {
  Q_OBJECT
 private slots:
  void initTestCase() { qputenv("WAN_GLOO_HOST", "127.0.0.1"); }

  void ditForwardIsTheDequantizedForward_data() {
    QTest::addColumn<QString>("suffix");
    QTest::addColumn<bool>("per_row");
    QTest::addColumn<bool>("e5m2");
    QTest::newRow("scale_weight, per tensor") << "scale_weight" << false << false;
    QTest::newRow("weight_scale, per output row") << "weight_scale" << true << false;
    QTest::newRow("scale_weight, e5m2") << "scale_weight" << false << true;
    QTest::newRow("plain float8 (no scales)") << "" << false << false;
  }
  void ditForwardIsTheDequantizedForward() {
    QFETCH(QString, suffix);
    QFETCH(bool, per_row);
    QFETCH(bool, e5m2);
    QTemporaryDir dir;
    const std::string file = dir.path().toStdString() + "/dit_fp8.safetensors";
    const Quantized qz = wan_test::quantize_weights(dit_fixture("dit_t2v_small"), kPrefix, suffix.toStdString(),
                                                    per_row, e5m2 ? torch::kFloat8_e5m2 : torch::kFloat8_e4m3fn);
    write_safetensors(file, qz.file);
    const TensorSourcePtr source = open_weights(file);
    LoadedDit dequantized = load_dit(source, dit_config(), ModelPlacement{});
    LoadedDit keep = load_dit(source, dit_config(), kept());
    // Every matrix of the DiT is a Linear weight: all are kept, at 1 byte per element instead of 4.
    QCOMPARE(keep.kept_float8.weights, static_cast<std::int64_t>(qz.reference.size()));
    std::int64_t float8_elements = 0;
    for (const auto& [name, ref] : qz.reference) float8_elements += ref.numel();
    QCOMPARE(keep.kept_float8.bytes, float8_elements);
    QCOMPARE(parameter_bytes(*keep.model), parameter_bytes(*dequantized.model) - 3 * float8_elements);
    for (const auto& p : keep.model->named_parameters(true))
      QVERIFY2(c10::isFloat8Type(p.value().scalar_type()) == (qz.reference.count(p.key()) != 0), p.key().c_str());
    QVERIFY(torch::equal(forward(keep), forward(dequantized)));
  }

  // umT5: its Linear weights are kept; its embedding tables, float8 in the file too, are dequantized.
  void textEncoderKeepsItsLinearWeights() {
    QTemporaryDir dir;
    const std::string file = dir.path().toStdString() + "/umt5_fp8_scaled.safetensors";
    const std::string fixture = golden("t5_small");
    const Quantized qz = wan_test::quantize_weights(fixture + "/t5_encoder.safetensors", "", "scale_weight", true,
                                                    torch::kFloat8_e4m3fn);
    write_safetensors(file, qz.file);
    LoadedT5 dequantized = load_t5(open_weights(file), ModelPlacement{});
    LoadedT5 keep = load_t5(open_weights(file), kept());
    std::int64_t linear = 0;
    for (const auto& [name, ref] : qz.reference) linear += name.find("embedding.") == std::string::npos ? 1 : 0;
    QVERIFY(linear > 0 && linear < static_cast<std::int64_t>(qz.reference.size()));
    QCOMPARE(keep.kept_float8.weights, linear);
    QCOMPARE(keep.model->named_parameters(true)["token_embedding.weight"].scalar_type(), torch::kFloat32);
    auto io = SafetensorsFile::open(fixture + "/io.safetensors");
    const std::int64_t valid = io->view("mask_0").sum().item<std::int64_t>();
    const torch::Tensor ids = io->view("ids_0").to(torch::kInt64).narrow(0, 0, valid);
    QVERIFY(torch::equal(keep.model->forward(ids), dequantized.model->forward(ids)));
  }

  // A LoRA's merge is float32, not q * s: the weights it patches load dequantized, the rest stay float8.
  void loraPatchedWeightsAreDequantized() {
    QTemporaryDir dir;
    const std::string file = dir.path().toStdString() + "/dit_fp8.safetensors";
    write_safetensors(file, wan_test::quantize_weights(dit_fixture("dit_t2v_small"), kPrefix, "scale_weight", false,
                                                       torch::kFloat8_e4m3fn)
                                .file);
    const std::string lora = dir.path().toStdString() + "/lora.safetensors";
    const std::string q = "blocks.0.self_attn.q";
    const std::int64_t dim = open_weights(file)->info(kPrefix + q + ".weight").shape[0];
    torch::manual_seed(3);
    write_safetensors(lora, {{"diffusion_model." + q + ".lora_A.weight", torch::randn({4, dim}) * 0.1},
                             {"diffusion_model." + q + ".lora_B.weight", torch::randn({dim, 4}) * 0.1}});
    auto merged =
        std::make_shared<LoraMergedSource>(std::make_shared<RenamedSource>(open_weights(file), dit_official_name),
                                           std::vector<LoraFile>{{lora, 0.8}}, false);
    LoadedDit dequantized = load_dit(merged, dit_config(), ModelPlacement{});
    LoadedDit keep = load_dit(merged, dit_config(), kept());
    const auto params = keep.model->named_parameters(true);
    QCOMPARE(params[q + ".weight"].scalar_type(), torch::kFloat32);
    QCOMPARE(params["blocks.0.self_attn.k.weight"].scalar_type(), torch::kFloat8_e4m3fn);
    QVERIFY(torch::equal(forward(keep), forward(dequantized)));
  }

  // FSDP shards the float8 bytes (a group of their own, moved as bytes) and every rank gets the
  // one-process forward, reading the file on rank 0 or each rank its own range.
  void shardedRanksGiveTheOneProcessForward_data() {
    QTest::addColumn<bool>("sync");
    QTest::newRow("rank 0 reads, broadcasts") << true;
    QTest::newRow("each rank reads its shard") << false;
  }
  void shardedRanksGiveTheOneProcessForward() {
    QFETCH(bool, sync);
    QTemporaryDir dir;
    const std::string file = dir.path().toStdString() + "/dit_fp8.safetensors";
    write_safetensors(file, wan_test::quantize_weights(dit_fixture("dit_t2v_small"), kPrefix, "scale_weight", true,
                                                       torch::kFloat8_e4m3fn)
                                .file);
    LoadedDit one = load_dit(open_weights(file), dit_config(), kept());
    const torch::Tensor expected = forward(one);
    ShardOptions options;
    options.sync_module_states = sync;
    const int world = 3;
    std::vector<torch::Tensor> outs(world);
    std::vector<std::int64_t> shard_bytes(world);
    const auto errors = wan_test::run_world(world, std::chrono::seconds(120), [&](Communicator& comm) {
      LoadedDit dit = load_dit(open_weights(file), dit_config(), kept(), make_sharding_loader(comm, options));
      outs[comm.rank()] = forward(dit);
      dit.model->residency->end_step();
      shard_bytes[comm.rank()] =
          std::static_pointer_cast<ShardedParameters>(dit.model->residency)->memory().shard_bytes;
    });
    for (int r = 0; r < world; ++r) {
      QVERIFY2(errors[r].empty(), errors[r].c_str());
      QVERIFY2(torch::equal(outs[r], expected), ("rank " + std::to_string(r)).c_str());
      // A third of the kept model (float8 matrices and float32 rest), padding aside.
      QVERIFY(shard_bytes[r] <= parameter_bytes(*one.model) / world + 4 * 64);
    }
  }

  void pipelineFromAnFp8ScaledDit() {
    QTemporaryDir fp8_dir, plain_dir, damaged_dir;
    const Quantized qz =
        wan_test::quantize_weights(dit_fixture("t2v_pipeline_small"), "", "scale_weight", true, torch::kFloat8_e4m3fn);
    folder_with_dit(fp8_dir.path().toStdString(), qz.file);
    Named dequantized;  // the weights an fp8 run computes with, written as float32
    for (const auto& [name, w] : qz.original)
      dequantized.emplace_back(name, qz.reference.count(name) ? qz.reference.at(name) : w);
    folder_with_dit(plain_dir.path().toStdString(), dequantized);

    GenerationRequest r = pipeline_case_request(golden("t2v_pipeline_small"));
    const torch::Tensor reference =
        SafetensorsFile::open(golden("t2v_pipeline_small") + "/io.safetensors")->view("final_latent");
    r.model.model_dir = plain_dir.path().toStdString();
    const torch::Tensor predicted = sample(r);
    r.model.model_dir = fp8_dir.path().toStdString();
    const torch::Tensor from_fp8 = sample(r);
    r.fp8_weights = Fp8Weights::kKeep;
    const torch::Tensor from_kept = sample(r);
    const torch::Tensor from_kept_fsdp = sample(r, R"({"world_size": 2, "dit_fsdp": true})");
    const double rounding = wan_test::rel_l2(predicted, reference);
    qInfo("final latent from an fp8_scaled DiT: %.4f relative to the fp32 reference (fp8 rounding alone)", rounding);
    QVERIFY(rounding > 0 && rounding < 0.2);
    QVERIFY2(wan_test::rel_l2(from_fp8, predicted) < 1e-5, "dequantized at load");
    QVERIFY2(torch::equal(from_kept, from_fp8), "kept in float8");
    QVERIFY2(wan_test::rel_l2(from_kept_fsdp, from_kept) < 1e-5, "kept in float8, FSDP over 2 ranks");

    // Its scales deleted: refused while planning (before any weights are read), in either mode.
    Named damaged;
    for (const auto& [n, t] : qz.file)
      if (n.find("scale_weight") == std::string::npos) damaged.emplace_back(n, t);
    folder_with_dit(damaged_dir.path().toStdString(), damaged);
    r.model.model_dir = damaged_dir.path().toStdString();
    expect_error([&] { make_plan(r, DistConfig{}, false); }, ErrorCode::kCorruptFile,
                 {"has no scale", "would be read wrong"});
  }
};

QTEST_APPLESS_MAIN(TestFp8Kept)
#include "tst_fp8_kept.moc"
