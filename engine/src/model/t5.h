// umT5 encoder (Wan2.1 t5.py T5Encoder): per-layer relative position bias, gated GELU FFN,
// T5 RMS layer norm, attention without 1/sqrt(d) scaling. Sizes always come from the tensors.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>

#include "model/layers.h"
#include "model/residency.h"
#include "weights/tensor_source.h"

namespace wan {

struct T5Config {
  std::int64_t vocab = 256384, dim = 4096, dim_attn = 4096, dim_ffn = 10240;
  std::int64_t num_heads = 64, num_layers = 24, num_buckets = 32;
  bool shared_pos = false;
  double eps = 1e-6;
  std::int64_t max_distance = 128;
};

// From official names (see RenamedSource for HF files). Throws kModelMismatch if not a T5 encoder.
T5Config detect_t5_config(const TensorSource& source);

struct T5RelativeEmbeddingImpl : torch::nn::Module {
  T5RelativeEmbeddingImpl(std::int64_t buckets, std::int64_t heads, const torch::TensorOptions& options);
  // [1, heads, L, L] bias for a bidirectional encoder.
  torch::Tensor forward(std::int64_t length, std::int64_t max_distance);
  std::shared_ptr<torch::nn::Module> embedding;
  torch::Tensor weight;  // [buckets, heads]
};
TORCH_MODULE(T5RelativeEmbedding);

struct T5BlockImpl : torch::nn::Module {
  T5BlockImpl(const T5Config& c, const ModelPlacement& p);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& pos_bias);
  T5Config config;
  Gain norm1{nullptr}, norm2{nullptr};
  Linear q{nullptr}, k{nullptr}, v{nullptr}, o{nullptr};
  Linear gate0{nullptr}, fc1{nullptr}, fc2{nullptr};
  T5RelativeEmbedding pos_embedding{nullptr};
};
TORCH_MODULE(T5Block);

struct T5EncoderImpl : torch::nn::Module {
  T5EncoderImpl(const T5Config& config, const ModelPlacement& placement);
  // ids: [L] int64, the valid tokens only (pad keys are masked in the reference, so dropping them is
  // exact). Returns [L, dim] float32.
  torch::Tensor forward(const torch::Tensor& ids);
  T5Config config;
  ModelPlacement placement;
  Gain token_embedding{nullptr};               // weight [vocab, dim]
  T5RelativeEmbedding pos_embedding{nullptr};  // shared_pos only
  torch::nn::ModuleList blocks{nullptr};
  Gain norm{nullptr};
  std::shared_ptr<ParameterResidency> residency;  // sharded weights (FSDP-style), else null
};
TORCH_MODULE(T5Encoder);

// T5 layer norm: x * rsqrt(mean(x_f32^2) + eps), cast to the weight dtype when it is half, times weight.
torch::Tensor t5_layer_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps);

}  // namespace wan
