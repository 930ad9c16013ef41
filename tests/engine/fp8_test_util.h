// float8 checkpoints made here from a fixture's weights, as ComfyUI's fp8_scaled files (and the
// diffusers-style spelling) hold them: tst_fp8_weights (reading) and tst_fp8_kept (Fp8Weights::kKeep).
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "test_util.h"
#include "weights/loader.h"

namespace wan_test {

using Named = std::vector<std::pair<std::string, torch::Tensor>>;

// A weight file with every matrix (2-D "*.weight") quantized with an absmax scale, one per tensor or one
// per output row, `prefix` before each name (ComfyUI writes "model.diffusion_model." before a DiT's);
// the rest (norms, biases, a 5-D patch embedding) in float32 as ComfyUI leaves them. `scale_suffix` is
// "scale_weight" (ComfyUI) or "weight_scale" (diffusers-style); "" writes a plain float8 file (no
// scales, no marker: ComfyUI's fp8_e4m3fn downloads).
struct Quantized {
  Named file;                                      // what is written
  std::map<std::string, torch::Tensor> reference;  // name in `path` -> q.float() * s, computed here
  std::map<std::string, torch::Tensor> original;   // name in `path` -> the fixture's weight
};

inline Quantized quantize_weights(const std::string& path, const std::string& prefix, const std::string& scale_suffix,
                                  bool per_row, torch::ScalarType fp8) {
  const double fp8_max = fp8 == torch::kFloat8_e4m3fn ? 448.0 : 57344.0;
  auto src = wan::open_weights(path);
  Quantized out;
  for (const std::string& n : src->names()) {
    const torch::Tensor w = src->view(n).to(torch::kFloat32).clone();
    out.original[n] = w;
    const bool matrix = w.dim() == 2 && n.size() > 7 && n.compare(n.size() - 7, 7, ".weight") == 0;
    if (!matrix) {
      out.file.emplace_back(prefix + n, w);
      continue;
    }
    const torch::Tensor amax = per_row ? w.abs().amax(1, /*keepdim=*/true) : w.abs().max();
    const torch::Tensor s = scale_suffix.empty() ? torch::ones({}) : (amax / fp8_max).clamp_min(1e-12);
    const torch::Tensor q = (w / s).to(fp8);
    out.file.emplace_back(prefix + n, q);
    out.reference[n] = q.to(torch::kFloat32) * s;
    if (scale_suffix.empty()) continue;
    const std::string stem = prefix + n.substr(0, n.size() - 7);
    out.file.emplace_back(stem + "." + scale_suffix, per_row ? s : s.reshape({}));
    out.file.emplace_back(stem + (scale_suffix == "scale_weight" ? ".scale_input" : ".input_scale"),
                          torch::ones({}, torch::kFloat32));
  }
  if (!scale_suffix.empty()) out.file.emplace_back(prefix + "scaled_fp8", torch::zeros({2}, torch::kFloat32).to(fp8));
  return out;
}

}  // namespace wan_test
