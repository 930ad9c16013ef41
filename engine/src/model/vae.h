// Wan VAE (vae.py WanVAE_): causal 3-D conv encoder/decoder with per-conv temporal caches.
// Encode runs frame 0, then chunks of 4 frames; decode runs one latent frame at a time.
// Sizes come from the tensors (base dim, z_dim, stage multipliers, temporal down-sampling).
#pragma once

#include <torch/nn/module.h>

#include <functional>
#include <vector>

#include "model/layers.h"
#include "weights/tensor_source.h"

namespace wan {

struct VaeConfig {
  std::int64_t dim = 96;
  std::int64_t z_dim = 16;
  std::vector<std::int64_t> dim_mult{1, 2, 4, 4};
  std::int64_t num_res_blocks = 2;
  std::vector<bool> temporal_downsample{false, true, true};
  // The Wan2.2 VAE (model/vae22.h, TI2V-5B): z_dim 48 and a 2x2 patchify before the encoder
  // (vae2_2.py:280-313), so 16 pixels per latent pixel. model_files.h's vae_config_of fills it.
  bool wan22 = false;
  std::int64_t patch = 1;
  std::int64_t dec_dim = 0;  // the Wan2.2 VAE's decoder width (0: the encoder's, as in Wan2.1)
  std::int64_t spatial_stride() const { return patch << (dim_mult.size() - 1); }
  std::int64_t temporal_stride() const;
};

VaeConfig detect_vae_config(const TensorSource& source);

// One cache slot per cached conv, visited in a fixed order on every chunk.
struct VaeCache {
  enum class State { kEmpty, kRep, kTensor };
  struct Slot {
    State state = State::kEmpty;
    torch::Tensor frames;
  };
  std::vector<Slot> entries;
  std::size_t next = 0;
  Slot& take() {
    if (next >= entries.size()) entries.resize(next + 1);
    return entries[next++];
  }
};

// A layer of the encoder/decoder stacks (residual block, attention block or resample).
struct VaeLayer : torch::nn::Module {
  virtual torch::Tensor run(const torch::Tensor& x, VaeCache& cache) = 0;
};

class WanVaeImpl : public torch::nn::Module {
 public:
  WanVaeImpl(const VaeConfig& config, const ModelPlacement& placement);

  // video [3, T, H, W] in [-1, 1], T = 1 + 4k, H and W multiples of 8 -> normalised latent
  // [z_dim, 1 + (T-1)/4, H/8, W/8] float32 (the mean; no sampling).
  torch::Tensor encode(const torch::Tensor& video);
  // latent [z_dim, F, h, w] -> video [3, 1 + 4(F-1), 8h, 8w] float32 clamped to [-1, 1].
  // on_frame(i, F) is called after each latent frame.
  torch::Tensor decode(const torch::Tensor& latent, const std::function<void(int, int)>& on_frame = {});

  const VaeConfig& config() const { return config_; }

 private:
  struct Stack {
    std::shared_ptr<torch::nn::Module> conv1;       // CausalConv3d
    std::vector<std::shared_ptr<VaeLayer>> layers;  // downsamples/upsamples + middle, in order
    std::shared_ptr<torch::nn::Module> head_norm, head_conv;
  };
  torch::Tensor run_stack(Stack& s, const torch::Tensor& x, VaeCache& cache);

  VaeConfig config_;
  ModelPlacement placement_;
  Stack encoder_, decoder_;
  Conv conv1{nullptr}, conv2{nullptr};
  torch::Tensor mean_, inv_std_;  // [z_dim] float32
};
TORCH_MODULE(WanVae);

}  // namespace wan
