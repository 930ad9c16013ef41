// The memory estimator: exact parameter counts, sharding arithmetic, layouts for the table's columns,
// the Auto preset's choice.
#include <QtTest/QtTest>

#include "model/dit.h"
#include "model/vae22.h"
#include "wan/estimate.h"

class TestEstimate : public QObject {
  Q_OBJECT
 private slots:
  void parameterCountsMatchTheReleasedModels() {
    // wan21-reference.md §1.1 (derived from the official module tree).
    QCOMPARE(wan::dit_param_count(wan::wan21_t2v_1_3b()), std::int64_t(1418996800));
    QCOMPARE(wan::dit_param_count(wan::wan21_t2v_14b()), std::int64_t(14288491584));
    wan::ModelDims i2v = wan::wan21_t2v_14b();
    i2v.i2v = true;
    i2v.in_dim = 36;
    QCOMPARE(wan::dit_param_count(i2v), std::int64_t(16394878784));
    QCOMPARE(wan::dit_param_count(wan::wan21_i2v_14b()), std::int64_t(16394878784));
    QCOMPARE(wan::t5_param_count(wan::wan21_t2v_1_3b()), std::int64_t(5680910336));
  }

  // Wan2.2: the formulas against the modules themselves, built at the release sizes on the meta device
  // (no memory): TI2V-5B's DiT (48 channels), an I2V-A14B expert (no CLIP layers) and the Wan2.2 VAE.
  void wan22CountsMatchTheModules() {
    const auto count = [](torch::nn::Module& m) {
      std::int64_t n = 0;
      for (const torch::Tensor& t : m.parameters()) n += t.numel();
      return n;
    };
    const wan::ModelPlacement meta = wan::ModelPlacement::make(torch::kFloat32, torch::Device(torch::kMeta));
    wan::DitConfig ti2v;
    ti2v.kind = wan::DitKind::kTI2V;
    ti2v.dim = 3072;
    ti2v.ffn_dim = 14336;
    ti2v.num_heads = 24;
    ti2v.num_layers = 30;
    ti2v.in_dim = ti2v.out_dim = 48;
    wan::WanModel five(ti2v, meta);
    QCOMPARE(wan::dit_param_count(wan::wan22_ti2v_5b()), count(*five));
    QVERIFY(count(*five) > 4.9e9 && count(*five) < 5.1e9);
    wan::DitConfig expert;
    expert.kind = wan::DitKind::kI2V;
    expert.clip_input = false;
    expert.dim = 5120;
    expert.ffn_dim = 13824;
    expert.num_heads = 40;
    expert.num_layers = 40;
    expert.in_dim = 36;
    wan::WanModel i2v(expert, meta);
    QCOMPARE(wan::dit_param_count(wan::wan22_i2v_a14b()), count(*i2v));
    wan::Wan22Vae vae(wan::Vae22Config{}, meta);
    QCOMPARE(wan::kVae22Params, count(*vae));
    QCOMPARE(wan::wan22_ti2v_5b().vae_params, wan::kVae22Params);
  }

  void shardingDividesWeights() {
    wan::EstimateSettings s;
    s.config.world_size = 4;
    const wan::ModelDims m = wan::wan21_t2v_14b();
    const auto full = wan::estimate_memory(m, s);
    s.config.dit_fsdp = s.config.use_fsdp = true;
    const auto sharded = wan::estimate_memory(m, s);
    const double block = 2.0 * (wan::dit_param_count(m) - 0) / m.num_layers;  // bf16 bytes per block (root is small)
    // FULL_SHARD: a quarter of the model plus the root and two gathered blocks.
    QVERIFY(sharded.weights < full.weights / 4 + 3 * block);
    QVERIFY(sharded.weights > full.weights / 4);
    s.config.sharding_strategy = wan::ShardingStrategy::kShardGradOp;
    QVERIFY(wan::estimate_memory(m, s).weights > full.weights);  // gathered model + shards
    s.config.sharding_strategy = wan::ShardingStrategy::kNoShard;
    QCOMPARE(wan::estimate_memory(m, s).weights, full.weights);
  }

  // --fp8-weights keep: the float8 matrices at 1 byte instead of the dtype's 2, plus one layer's
  // weight dequantized (float32 and bf16) while it runs; nothing changes for a file without float8.
  void keptFloat8HalvesTheMatrices() {
    wan::EstimateSettings s;
    wan::ModelDims m = wan::wan21_t2v_14b();
    const std::int64_t plain_dequantized = wan::estimate_memory(m, s).weights;
    s.fp8_weights = wan::Fp8Weights::kKeep;
    QCOMPARE(wan::estimate_memory(m, s).weights, plain_dequantized);  // no float8 weights: as before
    // ComfyUI's fp8_scaled 14B: the blocks' matrices in float8 (about 99 % of the parameters).
    m.dit_float8_params = 40 * (8LL * 5120 * 5120 + 2LL * 5120 * 13824);
    m.t5_float8_params = 24 * (4LL * 4096 * 4096 + 3LL * 4096 * 10240);
    const wan::MemoryEstimate keep = wan::estimate_memory(m, s);
    s.fp8_weights = wan::Fp8Weights::kDequantize;
    const wan::MemoryEstimate dequantized = wan::estimate_memory(m, s);
    QCOMPARE(dequantized.weights, plain_dequantized);
    const std::int64_t layer = 5120LL * 13824 * (4 + 2);
    QCOMPARE(keep.weights, dequantized.weights - m.dit_float8_params + layer);
    QVERIFY(keep.text_encoder < dequantized.text_encoder * 0.65);  // the embedding table stays bf16
    // Sharded, each rank's share shrinks the same way.
    s.config.world_size = 4;
    s.config.dit_fsdp = s.config.use_fsdp = true;
    const std::int64_t sharded = wan::estimate_memory(m, s).weights;
    s.fp8_weights = wan::Fp8Weights::kKeep;
    const double ratio = static_cast<double>(wan::estimate_memory(m, s).weights - layer) / sharded;
    QVERIFY2(ratio > 0.5 && ratio < 0.52, std::to_string(ratio).c_str());
    // An out-of-memory message offers it when the files hold float8 weights.
    s.fp8_weights = wan::Fp8Weights::kDequantize;
    bool offered = false;
    for (const wan::MemoryRemedy& r : wan::memory_remedies(m, s, "sampling", 8))
      offered = offered || r.flags == "--fp8-weights keep";
    QVERIFY(offered);
  }

  // Wan2.2 A14B: both experts are loaded, so twice one expert's weights; activations as one.
  void twoExpertsHoldTwiceTheWeights() {
    wan::EstimateSettings s;
    wan::ModelDims m = wan::wan21_t2v_14b();
    const wan::MemoryEstimate one = wan::estimate_memory(m, s);
    m.experts = 2;
    const wan::MemoryEstimate two = wan::estimate_memory(m, s);
    QCOMPARE(two.weights, 2 * one.weights);
    QCOMPARE(two.activations, one.activations);
    // An out-of-memory message offers the swap first among the weight remedies on one GPU; not with
    // the DiT sharded (both stay sharded), not for one DiT.
    const auto offers_swap = [](const wan::ModelDims& model, const wan::EstimateSettings& settings) {
      for (const wan::MemoryRemedy& r : wan::memory_remedies(model, settings, "sampling", 8))
        if (r.flags == "--idle-expert-on-host") return true;
      return false;
    };
    QVERIFY(offers_swap(m, s));
    QVERIFY(!offers_swap(wan::wan21_t2v_14b(), s));
    s.config.world_size = 2;
    s.config.dit_fsdp = s.config.use_fsdp = true;
    QVERIFY(!offers_swap(m, s));
  }

  // --cache keeps a float32 residual of the rank's tokens per pass: two without CFG parallel, one with.
  void stepCacheKeepsResiduals() {
    wan::EstimateSettings s;
    const wan::ModelDims m = wan::wan21_t2v_14b();
    const std::int64_t plain = wan::estimate_memory(m, s).activations;
    s.step_cache = true;
    const std::int64_t tokens = 21 * 30 * 52;  // 832x480, 81 frames: 21 latent frames of 60x104 / 2x2
    QCOMPARE(wan::estimate_memory(m, s).activations - plain, 2 * tokens * m.dim * 4);
    s.config.world_size = 2;
    s.config.cfg_parallel = true;
    s.step_cache = false;
    const std::int64_t cfg_plain = wan::estimate_memory(m, s).activations;
    s.step_cache = true;
    QCOMPARE(wan::estimate_memory(m, s).activations - cfg_plain, tokens * m.dim * 4);
  }

  void contextParallelDividesActivations() {
    wan::EstimateSettings s;
    const wan::ModelDims m = wan::wan21_t2v_1_3b();
    const auto one = wan::estimate_memory(m, s);
    s.config.world_size = 4;
    s.config.use_context_parallel = true;
    s.config.ulysses_size = 4;
    const auto four = wan::estimate_memory(m, s);
    QVERIFY(four.activations < one.activations / 2);
    QCOMPARE(four.weights, one.weights);
  }

  void t5OnCpuLeavesTheGpu() {
    wan::EstimateSettings s;
    s.config.t5_cpu = true;
    const auto e = wan::estimate_memory(wan::wan21_t2v_1_3b(), s);
    QCOMPARE(e.text_encoder, std::int64_t(0));
    QVERIFY(e.peak_phase != "text");
    s.gpu = false;  // on the CPU the encoder is in the process wherever it runs
    QVERIFY(wan::estimate_memory(wan::wan21_t2v_1_3b(), s).text_encoder > 0);
  }

  // Image-to-video: every rank encodes the start picture (CLIP, then the VAE); the CLIP features join
  // the text context, and the conditioning rides along with the latents.
  void imageToVideoAddsThePictureEncode() {
    wan::EstimateSettings s;
    s.width = 832;
    s.height = 480;
    wan::ModelDims t2v = wan::wan21_t2v_14b(), i2v = wan::wan21_i2v_14b();
    const wan::MemoryEstimate a = wan::estimate_memory(t2v, s), b = wan::estimate_memory(i2v, s);
    const wan::MemoryEstimate b1 = wan::estimate_memory(i2v, s, 1);
    QCOMPARE(a.image_encoder, std::int64_t(0));
    QVERIFY(b.image_encoder > 0);
    QCOMPARE(b1.image_encoder, b.image_encoder);  // not only the output rank
    QVERIFY(b.activations > a.activations);
    // What runs of ViT-H/14 (embeddings, pre-norm, 31 of 32 blocks; key shapes of wan21-reference.md §4.5).
    QCOMPARE(wan::clip_param_count(i2v), std::int64_t(611086080));
    QVERIFY(b.image_encoder >= wan::clip_param_count(i2v) * 2);
  }

  void onlyRankZeroDecodes() {
    wan::EstimateSettings s;
    s.config.world_size = 2;
    s.config.cfg_parallel = true;
    QVERIFY(wan::estimate_memory(wan::wan21_t2v_1_3b(), s, 0).vae_decode > 0);
    QCOMPARE(wan::estimate_memory(wan::wan21_t2v_1_3b(), s, 1).vae_decode, std::int64_t(0));
  }

  void layoutsForTheColumnsAreValid() {
    wan::DistConfig current;
    current.world_size = 4;
    current.use_context_parallel = true;
    current.ulysses_size = 2;
    current.ring_size = 2;
    current.dit_fsdp = current.use_fsdp = true;
    for (int heads : {12, 40}) {
      for (int world : {1, 2, 4, 8}) {
        const wan::DistConfig c = wan::layout_for_world(current, world, heads);
        QCOMPARE(c.world_size, world);
        const auto problems = wan::validate_dist_config(c, wan::DistEnvironment{-1, heads});
        QVERIFY2(problems.empty(), problems.empty() ? "" : problems.front().message.c_str());
      }
    }
    // The current column is the user's own layout, untouched.
    const wan::DistConfig same = wan::layout_for_world(current, 4, 12);
    QCOMPARE(same.ulysses_size, 2);
    QCOMPARE(same.ring_size, 2);
    // 12 heads over 8 ranks: ulysses must divide 12.
    const wan::DistConfig eight = wan::layout_for_world(current, 8, 12);
    QCOMPARE(12 % eight.ulysses_size, 0);
    QCOMPARE(eight.ulysses_size * eight.ring_size, 8);
  }

  void autoPicksTheFastestLayoutThatFits() {
    wan::EstimateSettings s;
    const wan::ModelDims m = wan::wan21_t2v_14b();
    // Plenty of memory: no sharding, CFG parallel + Ulysses.
    wan::AutoLayout big = wan::auto_layout(m, s, 8, std::int64_t(80) << 30);
    QVERIFY(big.fits);
    QVERIFY(!big.config.dit_fsdp);
    QVERIFY(big.config.cfg_parallel);
    QCOMPARE(big.config.ulysses_size * big.config.ring_size * 2, 8);
    QVERIFY(big.estimate.peak <= (std::int64_t(80) << 30));
    // 24 GB cards: the 14B needs sharding.
    wan::AutoLayout small = wan::auto_layout(m, s, 8, std::int64_t(24) << 30);
    QVERIFY(small.fits);
    QVERIFY(small.config.dit_fsdp);
    QVERIFY(wan::validate_dist_config(small.config, {8, m.num_heads}).empty());
    // Nothing fits on one 8 GB card at 720p: said so.
    s.width = 1280;
    s.height = 720;
    wan::AutoLayout none = wan::auto_layout(m, s, 1, std::int64_t(8) << 30);
    QVERIFY(!none.fits);
    QVERIFY(QString::fromStdString(none.reason).startsWith("nothing fits"));
    // No GPU: one CPU process.
    wan::AutoLayout cpu = wan::auto_layout(m, s, 0, 0);
    QVERIFY(cpu.config.backend == wan::Backend::kGloo);
    QCOMPARE(cpu.config.world_size, 1);
  }

  void autoSwapsTheIdleExpertBeforeSharding() {
    // Wan2.2 A14B at 720p on 48 GiB cards: both experts (about 63 GiB) do not fit, one does (about 37):
    // the swap at the boundary is cheaper than an all-gather per block per step.
    wan::EstimateSettings s;
    s.width = 1280;
    s.height = 720;
    const wan::ModelDims m = wan::wan22_t2v_a14b();
    for (int gpus : {1, 2}) {
      const wan::AutoLayout a = wan::auto_layout(m, s, gpus, std::int64_t(48) << 30);
      QVERIFY2(a.fits, a.reason.c_str());
      QVERIFY(a.config.idle_expert_on_host);
      QVERIFY(!a.config.dit_fsdp);
      QVERIFY(wan::validate_dist_config(a.config, {gpus, m.num_heads}).empty());
    }
    // 80 GiB: both stay on the GPU; a one-DiT model never swaps.
    QVERIFY(!wan::auto_layout(m, s, 1, std::int64_t(80) << 30).config.idle_expert_on_host);
    QVERIFY(!wan::auto_layout(wan::wan21_t2v_14b(), s, 1, std::int64_t(24) << 30).config.idle_expert_on_host);
    // Kept float8 layers are not moved (make_plan refuses the pair): sharding instead.
    s.fp8_weights = wan::Fp8Weights::kKeep;
    QVERIFY(!wan::auto_layout(m, s, 2, std::int64_t(48) << 30).config.idle_expert_on_host);
  }

  void presetsFitTheLoadedModel() {
    wan::EstimateSettings s;
    s.width = 1280;
    s.height = 720;
    wan::DistConfig one;  // resources/presets/1-gpu.json: one rank, nothing sharded
    one.param_dtype = wan::Dtype::kBFloat16;
    std::string note;
    // A14B on a 48 GiB card: the idle expert goes to host memory, and it is said why.
    wan::DistConfig c = wan::fit_preset_to_model(one, wan::wan22_t2v_a14b(), s, std::int64_t(48) << 30, &note);
    QVERIFY(c.idle_expert_on_host);
    QVERIFY2(QString::fromStdString(note).contains("idle expert waits in host memory"), note.c_str());
    // On 80 GiB both fit: unchanged, nothing said.
    c = wan::fit_preset_to_model(one, wan::wan22_t2v_a14b(), s, std::int64_t(80) << 30, &note);
    QVERIFY(!c.idle_expert_on_host);
    QVERIFY(note.empty());
    // No GPU known: unchanged.
    QVERIFY(!wan::fit_preset_to_model(one, wan::wan22_t2v_a14b(), s, 0, &note).idle_expert_on_host);
    // With the DiT sharded both experts stay sharded (the 8-GPU preset): no swap.
    wan::DistConfig eight = one;
    eight.world_size = 8;
    eight.use_fsdp = eight.dit_fsdp = true;
    eight.use_context_parallel = true;
    eight.ulysses_size = 4;
    eight.ring_size = 2;
    c = wan::fit_preset_to_model(eight, wan::wan22_t2v_a14b(), s, std::int64_t(24) << 30, &note);
    QVERIFY(!c.idle_expert_on_host);
    QCOMPARE(c.ulysses_size, 4);  // 40 heads: Ulysses 4 divides them
    // The 1.3B's 12 heads: Ulysses 4 x ring 2 stays; Ulysses 8 x ring 1 becomes 4 x 2, said.
    eight.ulysses_size = 8;
    eight.ring_size = 1;
    c = wan::fit_preset_to_model(eight, wan::wan21_t2v_1_3b(), s, std::int64_t(80) << 30, &note);
    QCOMPARE(c.ulysses_size, 4);
    QCOMPARE(c.ring_size, 2);
    QVERIFY(QString::fromStdString(note).contains("12 heads"));
    QVERIFY(wan::validate_dist_config(c, {8, 12}).empty());
    // idle_expert_on_host on a one-DiT model is dropped.
    one.idle_expert_on_host = true;
    QVERIFY(!wan::fit_preset_to_model(one, wan::wan22_ti2v_5b(), s, std::int64_t(24) << 30, &note).idle_expert_on_host);
  }
};

QTEST_GUILESS_MAIN(TestEstimate)
#include "tst_estimate.moc"
