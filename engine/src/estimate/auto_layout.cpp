// Layouts for the estimator's columns and the "Auto" preset.
#include <algorithm>
#include <cstdio>
#include <numeric>

#include "wan/estimate.h"

namespace wan {
namespace {

// The largest divisor of `n` that divides `heads` (heads 0: unknown, every divisor allowed).
int ulysses_for(int n, int heads) {
  for (int u = n; u > 1; --u)
    if (n % u == 0 && (heads <= 0 || heads % u == 0)) return u;
  return 1;
}

std::string gib(std::int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f GiB", static_cast<double>(bytes) / (1ull << 30));
  return buf;
}

}  // namespace

DistConfig layout_for_world(const DistConfig& current, int world_size, int num_heads) {
  DistConfig c = current;
  c.world_size = std::max(1, world_size);
  if (c.world_size == current.world_size) return c;
  c.cfg_parallel = current.cfg_parallel && c.world_size % 2 == 0;
  if (c.world_size == 1) c.dit_fsdp = c.t5_fsdp = c.use_fsdp = false;  // nothing to shard across
  const int sp = c.world_size / c.cfg_size();
  if (current.context_parallel() && sp > 1) {
    c.ulysses_size = ulysses_for(sp, num_heads);
    c.ring_size = sp / c.ulysses_size;
  } else {
    // Without context parallel the other ranks are replicas (only FSDP shards shrink).
    c.use_context_parallel = c.use_usp = false;
    c.ulysses_size = c.ring_size = 1;
  }
  return c;
}

AutoLayout auto_layout(const ModelDims& model, const EstimateSettings& settings, int gpus,
                       std::int64_t gpu_memory_bytes) {
  AutoLayout out;
  if (gpus <= 0) {
    out.config = settings.config;
    out.config.world_size = 1;
    out.config.backend = resolve_backend(out.config, Device{});  // no GPU: one CPU process
    out.config.cfg_parallel = out.config.use_context_parallel = out.config.use_usp = false;
    out.config.dit_fsdp = out.config.t5_fsdp = out.config.use_fsdp = false;
    out.config.ulysses_size = out.config.ring_size = 1;
    EstimateSettings s = settings;
    s.gpu = false;
    s.config = out.config;
    out.estimate = estimate_memory(model, s);
    out.fits = true;
    out.reason = "no GPU found: one CPU process (gloo)";
    return out;
  }
  // Fastest first: CFG parallel halves the work with one exchange per step; Ulysses costs two
  // all-to-alls per block; sharding adds an all-gather per block; T5 on the CPU is slow to encode.
  // Wan2.2 A14B: the idle expert in pinned host memory costs one host-to-device copy per generation
  // (at the boundary), sharding costs an all-gather per block per step: swapping comes first.
  struct Step {
    bool dit_fsdp, t5_fsdp, t5_cpu, idle_on_host;
    const char* what;
  };
  const Step steps[] = {{false, false, false, false, "no weight sharding"},
                        {false, false, false, true, "no weight sharding, idle expert in host memory"},
                        {true, false, false, false, "DiT sharded (FULL_SHARD)"},
                        {true, true, false, false, "DiT and T5 sharded (FULL_SHARD)"},
                        {true, true, true, false, "DiT sharded, T5 on the CPU"}};
  const std::int64_t budget = gpu_memory_bytes / 100 * 92;
  for (const Step& st : steps) {
    if (st.idle_on_host && (model.experts < 2 || settings.fp8_weights == Fp8Weights::kKeep)) continue;
    DistConfig c = settings.config;
    c.world_size = gpus;
    c.backend = Backend::kNccl;
    c.cfg_parallel = gpus % 2 == 0;
    const int sp = gpus / c.cfg_size();
    c.use_context_parallel = sp > 1;
    c.use_usp = false;
    c.ulysses_size = ulysses_for(sp, model.num_heads);
    c.ring_size = sp / c.ulysses_size;
    if (sp == 1) c.ulysses_size = c.ring_size = 1;
    c.dit_fsdp = st.dit_fsdp && gpus > 1;
    c.t5_fsdp = st.t5_fsdp && gpus > 1;
    c.use_fsdp = c.dit_fsdp || c.t5_fsdp;
    c.sharding_strategy = ShardingStrategy::kFullShard;
    c.t5_cpu = st.t5_cpu;
    c.idle_expert_on_host = st.idle_on_host;
    c.param_dtype = Dtype::kBFloat16;
    EstimateSettings s = settings;
    s.gpu = true;
    s.config = c;
    out.config = c;
    out.estimate = estimate_memory(model, s);
    out.fits = out.estimate.peak <= budget;
    char layout[96];
    std::snprintf(layout, sizeof(layout), "%d GPU%s: %s%d x %d (ulysses x ring)", gpus, gpus > 1 ? "s" : "",
                  c.cfg_parallel ? "CFG parallel, " : "", c.ulysses_size, c.ring_size);
    out.reason =
        std::string(layout) + ", " + st.what + ": " + gib(out.estimate.peak) + " per GPU of " + gib(gpu_memory_bytes);
    if (out.fits) return out;
  }
  out.reason = "nothing fits: " + out.reason + "; lower the resolution or the frame count";
  return out;
}

DistConfig fit_preset_to_model(const DistConfig& preset, const ModelDims& model, const EstimateSettings& settings,
                               std::int64_t gpu_memory_bytes, std::string* note) {
  DistConfig c = preset;
  std::string said;
  const auto add = [&](const std::string& s) { said += (said.empty() ? "" : " ") + s; };
  if (c.context_parallel() && model.num_heads > 0 && model.num_heads % c.ulysses_size != 0) {
    // The same world size and speed class; what validate_dist_config's message advises.
    const int ulysses = std::gcd(c.ulysses_size, model.num_heads);
    const int ring = c.ring_size * (c.ulysses_size / ulysses);
    add("Ulysses " + std::to_string(c.ulysses_size) + " does not divide the model's " +
        std::to_string(model.num_heads) + " heads: Ulysses " + std::to_string(ulysses) + " x ring " +
        std::to_string(ring) + " instead.");
    c.ulysses_size = ulysses;
    c.ring_size = ring;
  }
  if (model.experts < 2 && c.idle_expert_on_host) {
    c.idle_expert_on_host = false;  // one DiT: nothing idle (make_plan would only note it)
  } else if (model.experts > 1 && settings.gpu && gpu_memory_bytes > 0 && !c.dit_fsdp && !c.idle_expert_on_host &&
             settings.fp8_weights != Fp8Weights::kKeep) {
    // Wan2.2 A14B unsharded: both 14B experts on every GPU unless the idle one waits in host memory.
    EstimateSettings s = settings;
    s.config = c;
    const std::int64_t budget = gpu_memory_bytes / 100 * 92;
    const std::int64_t both = estimate_memory(model, s).peak;
    s.config.idle_expert_on_host = true;
    const std::int64_t one = estimate_memory(model, s).peak;
    if (both > budget && one < both) {
      c.idle_expert_on_host = true;
      add("Both Wan2.2 experts on each GPU would need " + gib(both) + " of " + gib(gpu_memory_bytes) +
          ": the idle expert waits in host memory (" + gib(one) + ").");
    }
  }
  if (note) *note = said;
  return c;
}

}  // namespace wan
