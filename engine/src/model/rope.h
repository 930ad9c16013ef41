// 3-D rotary position embedding of the Wan DiT: per head, the d/2 complex slots are split between
// frame, height and width ([c - 2*(c/3), c/3, c/3] with c = d/2); pairs are interleaved (x[2k], x[2k+1]).
#pragma once

#include <torch/types.h>

#include <cstdint>

namespace wan {

struct TokenGrid {
  std::int64_t frames = 0, height = 0, width = 0;  // in patches
  std::int64_t count() const { return frames * height * width; }
};

class RopeTable {
 public:
  explicit RopeTable(std::int64_t head_dim, std::int64_t max_positions = 1024, double theta = 10000.0);

  // cos and sin [count, d/2] (float64) for tokens [begin, begin + count) of `grid` in row-major
  // (f, h, w) order; tokens at or past grid.count() (padding) get the identity rotation.
  std::pair<torch::Tensor, torch::Tensor> for_tokens(const TokenGrid& grid, std::int64_t begin, std::int64_t count,
                                                     torch::Device device) const;

 private:
  std::int64_t head_dim_;
  torch::Tensor angles_f_, angles_h_, angles_w_;  // [max_positions, slots] float64
};

// x: [B, L, n, d]; cos/sin: [L, d/2]. Computed in float64, returned as float32 (as the reference).
torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin);

}  // namespace wan
