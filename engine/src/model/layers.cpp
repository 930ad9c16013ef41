#include "model/layers.h"

#include <torch/nn/functional.h>
#include <torch/version.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <string>

#include "model/attention_budget.h"
#include "model/residency.h"
#include "wan/error.h"
#include "weights/scaled_fp8.h"

namespace wan {

namespace {
thread_local bool g_deferred = false;
}  // namespace

DeferredParameters::DeferredParameters() : previous_(g_deferred) { g_deferred = true; }
DeferredParameters::~DeferredParameters() { g_deferred = previous_; }
bool DeferredParameters::active() { return g_deferred; }

torch::Tensor uninitialized(torch::IntArrayRef shape, const torch::TensorOptions& options) {
  // Deferred: the right shape and dtype and no storage (one element, broadcast); the sharding loader
  // replaces its data (set_data), possibly with a tensor on another device. An untouched allocation of
  // the whole model instead left a model-sized free region in the heap once it was replaced, over
  // which the sampling's temporaries spread: on the CPU the resident set grew by hundreds of MiB.
  if (g_deferred) return torch::empty({}, options.device(torch::kCPU).requires_grad(false)).expand(shape);
  return torch::empty(shape, options.requires_grad(false));
}

ModelPlacement ModelPlacement::make(torch::ScalarType dtype, torch::Device device, bool fp32_compute_on_cpu) {
  ModelPlacement p;
  p.dtype = dtype;
  p.device = device;
  p.compute_dtype = dtype;
  if (device.is_cpu() && (fp32_compute_on_cpu || dtype == torch::kFloat16)) p.compute_dtype = torch::kFloat32;
  return p;
}

LinearImpl::LinearImpl(std::int64_t in_features, std::int64_t out_features, bool with_bias,
                       const ModelPlacement& placement)
    : LinearImpl(in_features, out_features, with_bias, placement.weights()) {
  compute_dtype = placement.compute_dtype;
}

LinearImpl::LinearImpl(std::int64_t in_features, std::int64_t out_features, bool with_bias,
                       const torch::TensorOptions& options)
    : storage_dtype(c10::typeMetaToScalarType(options.dtype())), compute_dtype(storage_dtype) {
  weight = register_parameter("weight", uninitialized({out_features, in_features}, options), false);
  if (with_bias) bias = register_parameter("bias", uninitialized({out_features}, options), false);
}

torch::Tensor LinearImpl::forward(const torch::Tensor& x) {
  const torch::Tensor b = bias.defined() ? bias.to(compute_dtype) : bias;
  if (isFloat8Type(weight.scalar_type()))
    return torch::linear(x.to(compute_dtype),
                         dequantize_float8(weight, weight_scale).to(storage_dtype).to(compute_dtype), b);
  return torch::linear(x.to(compute_dtype), weight.to(compute_dtype), b);
}

GainImpl::GainImpl(torch::IntArrayRef shape, const torch::TensorOptions& options) {
  weight = register_parameter("weight", uninitialized(shape, options), false);
}

AffineImpl::AffineImpl(std::int64_t dim, const torch::TensorOptions& options) {
  weight = register_parameter("weight", uninitialized({dim}, options), false);
  bias = register_parameter("bias", uninitialized({dim}, options), false);
}

ConvImpl::ConvImpl(std::int64_t in_ch, std::int64_t out_ch, std::vector<std::int64_t> kernel, bool with_bias,
                   const ModelPlacement& placement)
    : compute_dtype(placement.compute_dtype) {
  const torch::TensorOptions options = placement.weights();
  std::vector<std::int64_t> shape{out_ch, in_ch};
  shape.insert(shape.end(), kernel.begin(), kernel.end());
  weight = register_parameter("weight", uninitialized(shape, options), false);
  if (with_bias) bias = register_parameter("bias", uninitialized({out_ch}, options), false);
}

torch::Tensor ConvImpl::forward(const torch::Tensor& x, torch::IntArrayRef stride, torch::IntArrayRef padding) {
  const torch::Tensor in = x.to(compute_dtype);
  const torch::Tensor w = weight.to(compute_dtype);
  const torch::Tensor b = bias.defined() ? bias.to(compute_dtype) : bias;
  if (weight.dim() == 5) {
    // On the CPU LibTorch picks oneDNN or its native im2col convolution by a heuristic on batch x
    // channels x frames x height (at most 20480: native), so a VAE decoding 336x192 took twice the
    // memory (column buffers) and 1.7x the time of 256x256 (LibTorch 1.13). The engine asks for oneDNN
    // directly; WAN_CPU_CONV3D=auto leaves the choice to LibTorch (to measure the difference).
    static const bool force_onednn = [] {
      const char* e = std::getenv("WAN_CPU_CONV3D");
      return !(e && std::string(e) == "auto");
    }();
    if (force_onednn && in.device().is_cpu() && in.scalar_type() == torch::kFloat32 && at::hasMKLDNN() &&
        at::globalContext().userEnabledMkldnn())
      return at::mkldnn_convolution(in.contiguous(), w.contiguous(), b, padding, stride, {1, 1, 1}, 1);
    return torch::conv3d(in, w, b, stride, padding);
  }
  return torch::conv2d(in, w, b, stride, padding);
}

torch::Tensor wan_rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  const torch::Tensor xf = x.to(torch::kFloat32);
  const torch::Tensor normed = (xf * torch::rsqrt(xf.pow(2).mean(-1, true) + eps)).to(x.scalar_type());
  return normed * weight;
}

torch::Tensor layer_norm_f32(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                             double eps) {
  const std::int64_t dim = x.size(-1);
  const torch::Tensor w = weight.defined() ? weight.to(torch::kFloat32) : torch::Tensor();
  const torch::Tensor b = bias.defined() ? bias.to(torch::kFloat32) : torch::Tensor();
  return torch::layer_norm(x.to(torch::kFloat32), {dim}, w, b, eps).to(x.scalar_type());
}

torch::Tensor gelu_tanh(const torch::Tensor& x) {
  // 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3))), the same operations in the same order (so the
  // same bits) but in place: as one expression all eight [tokens, ffn] temporaries lived to its end,
  // which made the FFN the largest working set of a CPU forward.
  torch::Tensor t = torch::pow(x, 3.0);
  t.mul_(0.044715).add_(x).mul_(std::sqrt(2.0 / M_PI)).tanh_().add_(1.0);
  return t.mul_(x * 0.5);
}

torch::Tensor gelu_erf(const torch::Tensor& x) { return torch::gelu(x); }

namespace {

// Reference attention for LibTorch without fused kernels: query chunks bound the score matrix.
torch::Tensor attention_chunked(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale) {
  // [B, n, L, d]
  const torch::Tensor qh = q.transpose(1, 2);
  const torch::Tensor kh = k.transpose(1, 2);
  const torch::Tensor vh = v.transpose(1, 2);
  const std::int64_t B = qh.size(0), n = qh.size(1), Lq = qh.size(2), Lk = kh.size(2);
  std::int64_t chunk = rows_per_slice(kAttentionChunkElements, B * n * Lk);
  chunk = std::min(chunk, Lq);
  std::vector<torch::Tensor> outs;
  for (std::int64_t s = 0; s < Lq; s += chunk) {
    const torch::Tensor qc = qh.narrow(2, s, std::min(chunk, Lq - s));
    // Not in place: scaling into a third buffer keeps the heap's blocks in a pattern that reuses them;
    // mul_ raised the peak of `wan bench` 1.3B/2 blocks 480x272x33 from 1.49 to 1.68 GB (fragmentation).
    torch::Tensor scores = torch::matmul(qc, kh.transpose(-1, -2)).to(torch::kFloat32) * scale;
    torch::Tensor probs = torch::softmax(scores, -1).to(vh.scalar_type());
    outs.push_back(torch::matmul(probs, vh));
  }
  torch::Tensor out = outs.size() == 1 ? outs[0] : torch::cat(outs, 2);
  return out.transpose(1, 2);  // [B, Lq, n, d]
}

}  // namespace

namespace {
std::atomic<AttentionMode> g_attention_mode{AttentionMode::kSdpa};
}  // namespace

void set_attention_mode(AttentionMode mode) { g_attention_mode.store(mode, std::memory_order_relaxed); }
AttentionMode attention_mode() { return g_attention_mode.load(std::memory_order_relaxed); }
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, std::int64_t valid_keys,
                        double scale) {
  // Masking keys past valid_keys is the same as dropping them.
  torch::Tensor kk = k, vv = v;
  if (valid_keys >= 0 && valid_keys < k.size(1)) {
    kk = k.narrow(1, 0, valid_keys);
    vv = v.narrow(1, 0, valid_keys);
  }
  if (scale < 0) scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  const torch::Tensor vq = vv.to(q.scalar_type());
  const torch::Tensor kq = kk.to(q.scalar_type());
  if (attention_mode() == AttentionMode::kSdpa) {
    // [B, n, L, d] views; no mask, no dropout, not causal: every back-end (CUDA and CPU) is eligible.
    torch::Tensor out = at::scaled_dot_product_attention(q.transpose(1, 2), kq.transpose(1, 2), vq.transpose(1, 2), {},
                                                         0.0, false, scale);
    return out.transpose(1, 2);
  }
  return attention_chunked(q, kq, vq, scale);
}

}  // namespace wan
