// Build a model from a weight file: detect the layout (official / ComfyUI / HF names), read or
// detect the configuration, construct the module at its placement and load it strictly.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "model/clip.h"
#include "model/dit.h"
#include "model/t5.h"
#include "model/tokenizer.h"
#include "model/vae.h"
#include "model/vae22.h"
#include "weights/tensor_source.h"

namespace wan {

// How a model gets its weights when they are sharded across ranks: the model is constructed with
// placeholder parameters (DeferredParameters) and this fills them (checking names and shapes as
// load_strict does) and returns the residency that manages them. Empty: the ordinary full load.
using ShardingLoader = std::function<std::shared_ptr<ParameterResidency>(
    torch::nn::Module& module, std::int64_t num_blocks, const TensorSource& source, const std::string& what,
    torch::Device device)>;

// Fp8Weights::kKeep (wan/types.h): every Linear of `module` whose weight `source` can give as float8
// bytes (TensorSource::float8_weight) gets a float8 placeholder of its shape for the load that follows
// to fill (load_strict and the sharding loader copy the float8 bytes into a float8 parameter: see
// stored_value in weights/loader.h) and its scale, read now onto `device`. Other weights are untouched
// (they load in the placement's dtype). Call between constructing the model and loading it.
struct KeptFloat8 {
  std::int64_t weights = 0;  // Linear weights kept in float8
  std::int64_t bytes = 0;    // their float8 bytes
};
KeptFloat8 keep_float8_weights(torch::nn::Module& module, const TensorSource& source, torch::Device device);

struct LoadedDit {
  WanModel model{nullptr};
  DitConfig config;
  TensorSourcePtr source;  // under official names
  KeptFloat8 kept_float8;  // placement.keep_float8: what stayed float8
};
// config_json: the contents of an official config.json, or empty to detect from the tensors.
LoadedDit load_dit(const TensorSourcePtr& file, const std::string& config_json, const ModelPlacement& placement,
                   const ShardingLoader& sharding = {});

struct LoadedT5 {
  T5Encoder model{nullptr};
  T5Config config;
  KeptFloat8 kept_float8;                         // placement.keep_float8: what stayed float8
  std::unique_ptr<Tokenizer> embedded_tokenizer;  // from a ComfyUI `spiece_model` tensor, if present
};
LoadedT5 load_t5(const TensorSourcePtr& file, const ModelPlacement& placement, const ShardingLoader& sharding = {});

// The VAE's sizes, whichever it is: the Wan2.2 VAE (is_wan22_vae: config.wan22, z_dim 48, stride 16)
// or the Wan2.1 one. Throws wan::Error(kModelMismatch) for a file that is neither.
VaeConfig vae_config_of(const TensorSource& source);

// The Wan2.1 VAE (model) or the Wan2.2 VAE (model22), one of them loaded; encode/decode as theirs.
struct LoadedVae {
  WanVae model{nullptr};
  Wan22Vae model22{nullptr};
  VaeConfig config;
  // video [3, T, H, W] -> normalised latent [z_dim, 1 + (T-1)/4, H/s, W/s] (s = config.spatial_stride()).
  torch::Tensor encode(const torch::Tensor& video);
  // latent [z_dim, F, h, w] -> video [3, 1 + 4(F-1), s*h, s*w] clamped; on_frame after each latent frame.
  torch::Tensor decode(const torch::Tensor& latent, const std::function<void(int, int)>& on_frame = {});
};
LoadedVae load_vae(const TensorSourcePtr& file, const ModelPlacement& placement);

struct LoadedClip {
  ClipVision model{nullptr};
  ClipVisionConfig config;
};
// The CLIP vision tower of an official open-clip .pth or a ComfyUI clip_vision file; num_heads > 0
// overrides the head count the width implies (clip_default_heads).
LoadedClip load_clip(const TensorSourcePtr& file, const ModelPlacement& placement, std::int64_t num_heads = 0);

}  // namespace wan
