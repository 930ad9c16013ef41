#include "model/rope.h"

#include <torch/torch.h>

#include <algorithm>

#include "model/attention_budget.h"
#include "wan/error.h"

namespace wan {
namespace {

// angle[p, j] = p / theta^(2j / dim), j < dim/2 (rope_params).
torch::Tensor axis_angles(std::int64_t positions, std::int64_t dim, double theta) {
  auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  torch::Tensor inv = 1.0 / torch::pow(theta, torch::arange(0, dim, 2, opts) / static_cast<double>(dim));
  return torch::outer(torch::arange(positions, opts), inv);
}

}  // namespace

RopeTable::RopeTable(std::int64_t head_dim, std::int64_t max_positions, double theta) : head_dim_(head_dim) {
  const std::int64_t d = head_dim;
  angles_f_ = axis_angles(max_positions, d - 4 * (d / 6), theta);
  angles_h_ = axis_angles(max_positions, 2 * (d / 6), theta);
  angles_w_ = axis_angles(max_positions, 2 * (d / 6), theta);
}

std::pair<torch::Tensor, torch::Tensor> RopeTable::for_tokens(const TokenGrid& grid, std::int64_t begin,
                                                              std::int64_t count, torch::Device device) const {
  const std::int64_t maxp = angles_f_.size(0);
  if (grid.frames > maxp || grid.height > maxp || grid.width > maxp)
    throw Error(ErrorCode::kInvalidArgument,
                "video too large for RoPE: a grid side exceeds " + std::to_string(maxp) + " patches");
  const std::int64_t slots = head_dim_ / 2;
  auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  torch::Tensor angles = torch::zeros({count, slots}, opts);
  const std::int64_t real_end = std::min(begin + count, grid.count());
  if (real_end > begin) {
    torch::Tensor idx = torch::arange(begin, real_end, torch::TensorOptions().dtype(torch::kInt64));
    const std::int64_t hw = grid.height * grid.width;
    torch::Tensor f = idx.div(hw, "trunc");
    torch::Tensor h = idx.remainder(hw).div(grid.width, "trunc");
    torch::Tensor w = idx.remainder(grid.width);
    torch::Tensor real =
        torch::cat({angles_f_.index_select(0, f), angles_h_.index_select(0, h), angles_w_.index_select(0, w)}, 1);
    angles.narrow(0, 0, real_end - begin).copy_(real);
  }
  return {torch::cos(angles).to(device), torch::sin(angles).to(device)};
}

torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  // In float64 as the reference does, a slice of tokens at a time into the float32 output: the float64
  // copy, the four products and the stacked pairs of a whole [L, dim] input were ten input-sized
  // temporaries at once (the largest moment of a CPU block). Elementwise, so the bits are the same.
  const std::int64_t B = x.size(0), L = x.size(1), n = x.size(2), d = x.size(3);
  torch::Tensor out = torch::empty(x.sizes(), x.options().dtype(torch::kFloat32));
  const std::int64_t chunk = rows_per_slice(kRopeChunkElements, B * n * d);
  for (std::int64_t l0 = 0; l0 < L; l0 += chunk) {
    const std::int64_t c = std::min(chunk, L - l0);
    // [B, c, n, d/2, 2] pairs (re, im)
    torch::Tensor xd = x.narrow(1, l0, c).to(torch::kFloat64).reshape({B, c, n, d / 2, 2});
    torch::Tensor re = xd.select(-1, 0), im = xd.select(-1, 1);
    torch::Tensor cc = cos.narrow(0, l0, c).view({1, c, 1, cos.size(1)});
    torch::Tensor ss = sin.narrow(0, l0, c).view({1, c, 1, sin.size(1)});
    out.narrow(1, l0, c).copy_(torch::stack({re * cc - im * ss, re * ss + im * cc}, -1).flatten(3));
  }
  return out;
}

}  // namespace wan
