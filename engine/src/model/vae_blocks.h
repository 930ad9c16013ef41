// The building blocks both Wan VAEs share (Wan2.1 vae.py and Wan2.2 vae2_2.py define them alike):
// the causal 3-D convolution, the channel RMS norm and the per-chunk temporal cache of a conv's input.
// Internal to model/vae.cpp and model/vae22.cpp (torch types).
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <memory>
#include <vector>

#include "model/layers.h"
#include "model/vae.h"

namespace wan::vae_blocks {

// CACHE_T (wan/modules/vae.py and vae2_2.py:14): input frames a conv keeps from the previous chunk.
constexpr std::int64_t kCacheFrames = 2;

// CausalConv3d (wan/modules/vae.py, class CausalConv3d; vae2_2.py:17-42): zero padding in front on time (2*pt frames,
// less what the cache supplies), symmetric on height and width.
struct CausalConv3dImpl : torch::nn::Module {
  CausalConv3dImpl(std::int64_t in, std::int64_t out, std::array<std::int64_t, 3> k, std::array<std::int64_t, 3> stride,
                   std::array<std::int64_t, 3> pad, const ModelPlacement& o)
      : stride_(stride), pad_(pad) {
    conv_ = std::make_shared<ConvImpl>(in, out, std::vector<std::int64_t>{k[0], k[1], k[2]}, true, o);
    weight = register_parameter("weight", conv_->weight, false);
    bias = register_parameter("bias", conv_->bias, false);
  }
  // x: [B, C, T, H, W]; cache: earlier frames of this conv's input (may be undefined)
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& cache = {}) {
    std::int64_t front = 2 * pad_[0];
    if (cache.defined() && front > 0) {
      x = torch::cat({cache.to(x.scalar_type()), x}, 2);
      front -= cache.size(2);
    }
    x = torch::constant_pad_nd(x, {pad_[2], pad_[2], pad_[1], pad_[1], front, 0}, 0.0);
    return conv_->forward(x, {stride_[0], stride_[1], stride_[2]}, {0, 0, 0});
  }
  std::shared_ptr<ConvImpl> conv_;
  torch::Tensor weight, bias;
  std::array<std::int64_t, 3> stride_, pad_;
};
TORCH_MODULE(CausalConv3d);

inline CausalConv3d make_cc(std::int64_t in, std::int64_t out, std::array<std::int64_t, 3> k,
                            std::array<std::int64_t, 3> stride, std::array<std::int64_t, 3> pad,
                            const ModelPlacement& o) {
  return CausalConv3d(std::make_shared<CausalConv3dImpl>(in, out, k, stride, pad, o));
}

// RMS_norm (wan/modules/vae.py, class RMS_norm; vae2_2.py:45-59): F.normalize over channels * sqrt(C) * gamma (no
// bias).
struct ChannelRmsNormImpl : torch::nn::Module {
  ChannelRmsNormImpl(std::int64_t dim, bool images, const ModelPlacement& o) : scale(std::sqrt(double(dim))) {
    std::vector<std::int64_t> shape{dim, 1, 1};
    if (!images) shape.push_back(1);
    gamma = register_parameter("gamma", uninitialized(shape, o.weights()), false);
  }
  torch::Tensor forward(const torch::Tensor& x) {
    // Statistics in float32 (matters for bf16/fp16 compute); result in x's dtype. F.normalize divides
    // by max(||x||, 1e-12).
    const torch::Tensor xf = x.to(torch::kFloat32);
    const torch::Tensor norm = xf.norm(2, {1}, true).clamp_min(1e-12);
    return (xf / norm * scale * gamma.to(torch::kFloat32)).to(x.scalar_type());
  }
  double scale;
  torch::Tensor gamma;
};
TORCH_MODULE(ChannelRmsNorm);

// A conv with its slot of the per-chunk cache: the last CACHE_T input frames of the previous chunk, or
// its last frame plus this chunk's only one (the reference's feat_cache rule).
inline torch::Tensor cached_conv(CausalConv3dImpl& conv, const torch::Tensor& x, VaeCache& cache) {
  VaeCache::Slot& slot = cache.take();
  torch::Tensor cache_x =
      x.narrow(2, std::max<std::int64_t>(0, x.size(2) - kCacheFrames), std::min<std::int64_t>(kCacheFrames, x.size(2)))
          .clone();
  if (cache_x.size(2) < 2 && slot.state == VaeCache::State::kTensor)
    cache_x = torch::cat({slot.frames.narrow(2, slot.frames.size(2) - 1, 1), cache_x}, 2);
  torch::Tensor out = conv.forward(x, slot.state == VaeCache::State::kTensor ? slot.frames : torch::Tensor());
  slot.state = VaeCache::State::kTensor;
  slot.frames = cache_x;
  return out;
}

}  // namespace wan::vae_blocks
