// Building blocks shared by the DiT, T5, CLIP and VAE: parameter-holding modules whose registered
// names follow the official checkpoints, and the numeric helpers (norms, GELU, attention).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <array>
#include <string>

#include "wan/dist_config.h"  // AttentionMode

namespace wan {

// Where a model's tensors live and which dtype its matmul weights use. Norms, modulation and other
// float32 islands keep float32 whatever `dtype` says.
struct ModelPlacement {
  torch::ScalarType dtype = torch::kFloat32;          // storage dtype of matmul/conv weights
  torch::ScalarType compute_dtype = torch::kFloat32;  // dtype those layers compute in
  torch::Device device = torch::kCPU;
  // Linear weights the file stores in float8 stay in float8 (Fp8Weights::kKeep, wan/types.h): the loader
  // calls keep_float8_weights (model_files.h) before it fills the model.
  bool keep_float8 = false;
  // Compute dtype = storage dtype, except where the device lacks kernels: LibTorch's CPU backend has
  // no fp16 matmul/conv, so fp16 weights compute in float32 there. fp32_compute_on_cpu keeps float32
  // activations on the CPU for any storage dtype (the VAE: float32 in the reference, and CPU bf16
  // conv3d is slow).
  static ModelPlacement make(torch::ScalarType dtype, torch::Device device, bool fp32_compute_on_cpu = false);
  torch::TensorOptions weights() const { return torch::TensorOptions().dtype(dtype).device(device); }
  torch::TensorOptions fp32() const { return torch::TensorOptions().dtype(torch::kFloat32).device(device); }
};

// A parameter placeholder: memory is allocated but not initialised; the loader fills it.
torch::Tensor uninitialized(torch::IntArrayRef shape, const torch::TensorOptions& options);

// y = x W^T + b, x cast to the compute dtype (autocast-like: the output has the compute dtype).
struct LinearImpl : torch::nn::Module {
  // Weights in the placement's storage dtype, computing in its compute dtype.
  LinearImpl(std::int64_t in_features, std::int64_t out_features, bool bias, const ModelPlacement& placement);
  // A float32 island (options' dtype for storage and compute).
  LinearImpl(std::int64_t in_features, std::int64_t out_features, bool bias, const torch::TensorOptions& options);
  // x: [..., in_features] -> [..., out_features] in compute_dtype. A float8 weight (kept float8,
  // keep_float8 below) is dequantized first: dequantize_float8(weight, weight_scale) rounded to
  // storage_dtype, then to compute_dtype, the values a dequantizing load would have stored; the float32
  // and storage-dtype copies of this one weight live until the matmul returns.
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;
  // Scale of a float8 weight (Float8Weight::scale: scalar, [out], [out, 1] or [out, blocks, 1]), on the
  // weight's device; undefined otherwise. Not a registered buffer: it is not in the official names, and
  // every rank holds all of it (FSDP shards only the registered parameters).
  torch::Tensor weight_scale;
  torch::ScalarType storage_dtype;  // what the weight would be stored as if it were not float8
  torch::ScalarType compute_dtype;
};
TORCH_MODULE(Linear);

// Holds a single `weight` (RMSNorm gains, T5 norms).
struct GainImpl : torch::nn::Module {
  GainImpl(torch::IntArrayRef shape, const torch::TensorOptions& options);
  torch::Tensor weight;
};
TORCH_MODULE(Gain);

// LayerNorm parameters (`weight`, `bias`).
struct AffineImpl : torch::nn::Module {
  AffineImpl(std::int64_t dim, const torch::TensorOptions& options);
  torch::Tensor weight, bias;
};
TORCH_MODULE(Affine);

// Conv (2-D or 3-D by kernel rank) with weight [out, in, k...] and bias [out]. Padding is applied by
// the caller (the VAE pads causally).
struct ConvImpl : torch::nn::Module {
  ConvImpl(std::int64_t in_ch, std::int64_t out_ch, std::vector<std::int64_t> kernel, bool bias,
           const ModelPlacement& placement);
  // x: [B, C, (T,) H, W]; computes and returns the compute dtype.
  torch::Tensor forward(const torch::Tensor& x, torch::IntArrayRef stride, torch::IntArrayRef padding);
  torch::Tensor weight, bias;
  torch::ScalarType compute_dtype;
};
TORCH_MODULE(Conv);

// Wan RMSNorm: (x_f32 * rsqrt(mean(x^2) + eps)).to(x.dtype) * weight.
torch::Tensor wan_rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps);
// LayerNorm over the last dim computed in float32, cast back to x's dtype; weight/bias may be undefined.
torch::Tensor layer_norm_f32(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                             double eps);
torch::Tensor gelu_tanh(const torch::Tensor& x);
torch::Tensor gelu_erf(const torch::Tensor& x);

// How attention() computes, process-wide (the distributed config's attention_mode; `wan bench
// --attention`). Set it before a run starts; it is read without a lock.
//   kSdpa (default): at::scaled_dot_product_attention. On CUDA LibTorch picks flash, memory-efficient or
//     cuDNN attention; on the CPU its fused flash-style kernel (blocks of queries and keys with an online
//     softmax in float32: no [Lq, Lk] score matrix).
//   kMath: the reference: query chunks of bounded score memory (kAttentionChunkElements), scores and
//     softmax in float32, then the product with v in q's dtype.
// (AttentionMode and parse_attention_mode: wan/dist_config.h.)
void set_attention_mode(AttentionMode mode);
AttentionMode attention_mode();

// Multi-head attention. q: [B, Lq, n, d], k/v: [B, Lk, n, d]. Keys at positions >= valid_keys (if
// valid_keys >= 0) are masked out (dropped). Output [B, Lq, n, d] in q's dtype. scale < 0 means 1/sqrt(d).
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        std::int64_t valid_keys = -1, double scale = -1.0);

}  // namespace wan
