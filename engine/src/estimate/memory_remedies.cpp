// Remedies for an out-of-memory failure, ranked by the estimator (wan/estimate.h).
#include <algorithm>

#include "wan/estimate.h"

namespace wan {
namespace {

// Rounded down to a multiple of `m`, at least `m`.
int down_to(int value, int m) { return std::max(m, value / m * m); }

}  // namespace

// The host holds every CPU rank; a GPU holds one.
std::int64_t phase_need_bytes(const ModelDims& model, const EstimateSettings& s, const std::string& phase) {
  const std::int64_t one = phase_bytes(estimate_memory(model, s, 0), phase);
  return s.gpu ? one : one * std::max(1, s.config.world_size);
}

std::int64_t phase_bytes(const MemoryEstimate& e, const std::string& phase) {
  std::int64_t bytes = e.peak - e.runtime;
  if (phase == "text") bytes = e.text_encoder;
  if (phase == "image") bytes = e.image_encoder;
  if (phase == "loading" || phase == "sampling") bytes = e.weights + e.activations;
  if (phase == "decoding" || phase == "writing") bytes = e.vae_decode;
  return bytes + e.runtime;
}

std::vector<MemoryRemedy> memory_remedies(const ModelDims& model, const EstimateSettings& settings,
                                          const std::string& phase, int limit) {
  const DistConfig& c = settings.config;
  std::vector<std::pair<EstimateSettings, MemoryRemedy>> candidates;
  auto add = [&](EstimateSettings s, std::string flags, std::string description) {
    candidates.push_back({s, MemoryRemedy{std::move(flags), std::move(description), 0}});
  };
  EstimateSettings s = settings;
  if (settings.gpu && !c.t5_cpu) {
    s = settings;
    s.config.t5_cpu = true;
    s.config.t5_fsdp = false;
    add(s, "--t5-cpu", "run umT5 on the CPU");
  }
  if (settings.gpu && c.world_size > 1 && !c.t5_cpu && !c.t5_fsdp) {
    s = settings;
    s.config.t5_fsdp = true;
    add(s, "--t5-fsdp", "shard umT5 over the ranks");
  }
  if (settings.gpu && model.experts > 1 && !c.dit_fsdp && !c.idle_expert_on_host &&
      settings.fp8_weights != Fp8Weights::kKeep) {
    s = settings;
    s.config.idle_expert_on_host = true;
    add(s, "--idle-expert-on-host", "keep the idle Wan2.2 expert in host memory");
  }
  if (c.world_size > 1 && !c.dit_fsdp) {
    s = settings;
    s.config.dit_fsdp = true;
    add(s, "--dit-fsdp", "shard the DiT over the ranks");
  }
  if (settings.gpu) {
    const int more = c.world_size * 2;
    DistConfig wider = c;
    wider.dit_fsdp = true;
    s = settings;
    s.config = layout_for_world(wider, more, model.num_heads);
    s.config.dit_fsdp = true;
    add(s, "--world-size " + std::to_string(more) + " --dit-fsdp",
        "use " + std::to_string(more) + " GPUs with the DiT sharded");
  }
  if (settings.dtype == Dtype::kFloat32 || (!settings.gpu && settings.dtype == Dtype::kAuto)) {
    s = settings;
    s.dtype = Dtype::kBFloat16;
    add(s, "--dtype bf16", "bf16 weights");
  }
  if (settings.fp8_weights == Fp8Weights::kDequantize && model.dit_float8_params + model.t5_float8_params > 0) {
    s = settings;
    s.fp8_weights = Fp8Weights::kKeep;
    add(s, "--fp8-weights keep", "keep the float8 weights in float8");
  }
  if (settings.frames > 5) {
    s = settings;
    s.frames = down_to((settings.frames - 1) / 2, 4) + 1;
    add(s, "--frames " + std::to_string(s.frames), "fewer frames");
  }
  if (settings.width > 16 || settings.height > 16) {
    s = settings;
    s.width = down_to(settings.width * 3 / 4, 16);
    s.height = down_to(settings.height * 3 / 4, 16);
    add(s, "--width " + std::to_string(s.width) + " --height " + std::to_string(s.height), "a smaller picture");
  }

  const std::int64_t now = phase_need_bytes(model, settings, phase);
  std::vector<MemoryRemedy> out;
  for (auto& [after, remedy] : candidates) {
    remedy.bytes = phase_need_bytes(model, after, phase);
    if (remedy.bytes < now - now / 20) out.push_back(remedy);  // a change that saves under 5 % is no remedy
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const MemoryRemedy& a, const MemoryRemedy& b) { return a.bytes < b.bytes; });
  if (static_cast<int>(out.size()) > limit) out.resize(static_cast<std::size_t>(std::max(0, limit)));
  return out;
}

}  // namespace wan
