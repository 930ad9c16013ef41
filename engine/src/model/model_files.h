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
#include "weights/tensor_source.h"

namespace wan {

// How a model gets its weights when they are sharded across ranks: the model is constructed with
// placeholder parameters (DeferredParameters) and this fills them (checking names and shapes as
// load_strict does) and returns the residency that manages them. Empty: the ordinary full load.
using ShardingLoader = std::function<std::shared_ptr<ParameterResidency>(
    torch::nn::Module& module, std::int64_t num_blocks, const TensorSource& source, const std::string& what,
    torch::Device device)>;

struct LoadedDit {
  WanModel model{nullptr};
  DitConfig config;
  TensorSourcePtr source;  // under official names
};
// config_json: the contents of an official config.json, or empty to detect from the tensors.
LoadedDit load_dit(const TensorSourcePtr& file, const std::string& config_json, const ModelPlacement& placement,
                   const ShardingLoader& sharding = {});

struct LoadedT5 {
  T5Encoder model{nullptr};
  T5Config config;
  std::unique_ptr<Tokenizer> embedded_tokenizer;  // from a ComfyUI `spiece_model` tensor, if present
};
LoadedT5 load_t5(const TensorSourcePtr& file, const ModelPlacement& placement, const ShardingLoader& sharding = {});

struct LoadedVae {
  WanVae model{nullptr};
  VaeConfig config;
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
