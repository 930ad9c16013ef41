// The CLIP ViT vision tower as image-to-video uses it (Wan2.1 clip.py, CLIPModel.visual with
// use_31_block): bicubic resize to the tower's input size, CLIP normalisation, patch embedding
// (no bias), class token, position embedding, pre-norm, then every block but the last. Registered
// names follow the official open-clip checkpoint without its "visual." prefix.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>

#include <array>

#include "model/layers.h"
#include "weights/tensor_source.h"

namespace wan {

struct ClipVisionConfig {
  std::int64_t image_size = 224, patch_size = 14, dim = 1280, mlp_dim = 5120;
  std::int64_t num_heads = 16, num_layers = 32;
  double eps = 1e-5;
  std::array<double, 3> mean{0.48145466, 0.4578275, 0.40821073};
  std::array<double, 3> std{0.26862954, 0.26130258, 0.27577711};
  std::int64_t tokens() const { return 1 + (image_size / patch_size) * (image_size / patch_size); }
  // Blocks the image-to-video features come from: all but the last.
  std::int64_t used_layers() const { return num_layers - 1; }
  std::int64_t parameter_count() const;  // of the used part
};

// The head count is not in the weights: 16 for the 1280-wide ViT-H/14 of Wan2.1 (and ViT-L), 12 for
// 768 wide, otherwise 16-wide heads (the small test towers). Returns 0 if `dim` fits none.
std::int64_t clip_default_heads(std::int64_t dim);

// Detects the configuration from a source under official names ("visual." prefix included, as in
// the .pth, or the ComfyUI "vision_model." names mapped by clip_official_source). num_heads_override
// > 0 replaces the default head count. Throws kModelMismatch if the file is not a CLIP vision tower.
ClipVisionConfig detect_clip_config(const TensorSource& source, std::int64_t num_heads_override = 0);

// The file's tensors as the module wants them: official open-clip names with "visual." stripped,
// textual.*, log_scale, head, post_norm and the unused last block left out. Files in ComfyUI / Hugging
// Face naming (vision_model.*) are converted (q, k and v joined, embeddings reshaped).
TensorSourcePtr clip_module_source(const TensorSourcePtr& file, const ClipVisionConfig& config);

struct ClipBlockImpl : torch::nn::Module {
  ClipBlockImpl(const ClipVisionConfig& c, const ModelPlacement& p);
  torch::Tensor forward(const torch::Tensor& x);
  std::int64_t num_heads;
  double eps;
  Affine norm1{nullptr}, norm2{nullptr};
  Linear to_qkv{nullptr}, proj{nullptr}, mlp0{nullptr}, mlp2{nullptr};
};
TORCH_MODULE(ClipBlock);

class ClipVisionImpl : public torch::nn::Module {
 public:
  ClipVisionImpl(const ClipVisionConfig& config, const ModelPlacement& placement);
  // image [3, h, w] in [-1, 1] (any size) -> features [1, tokens, dim] float32.
  torch::Tensor encode(const torch::Tensor& image);
  const ClipVisionConfig& config() const { return config_; }

  Conv patch_embedding{nullptr};
  torch::Tensor cls_embedding, pos_embedding;
  Affine pre_norm{nullptr};
  torch::nn::ModuleList transformer{nullptr};

 private:
  ClipVisionConfig config_;
  ModelPlacement placement_;
};
TORCH_MODULE(ClipVision);

}  // namespace wan
