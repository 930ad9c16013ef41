// The memory estimator: per-phase working sets of the engine's own pipeline (text encoding, then the
// DiT's sampling, then the VAE decode on the output rank; each model is freed before the next loads).
// docs/MEMORY.md derives each term and compares the sums with measured peaks.
#include <algorithm>
#include <cmath>

#include "model/attention_budget.h"
#include "wan/estimate.h"

namespace wan {
namespace {

constexpr std::int64_t kMiB = std::int64_t(1) << 20;

int dtype_bytes(Dtype dtype) {
  return dtype == Dtype::kFloat32 ? 4 : 2;  // bf16, fp16
}

// The engine's rule (rank_runtime.cpp effective_dtype): --dtype auto is fp32 on the CPU, and on a GPU
// the FSDP param_dtype when the DiT is sharded, else bf16.
int param_bytes(const EstimateSettings& s) {
  if (s.dtype != Dtype::kAuto) return dtype_bytes(s.dtype);
  if (!s.gpu) return 4;
  return s.config.dit_fsdp ? dtype_bytes(s.config.param_dtype) : 2;
}

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

// One FSDP-style sharded model: `root` parameters outside the blocks, `blocks` equal blocks.
struct Units {
  std::int64_t root = 0, block = 0;
  int blocks = 0;
  std::int64_t total() const { return root + block * blocks; }
};

// Parameters one rank holds while the model runs (bytes), as engine/src/dist/fsdp.cpp keeps them:
// FULL_SHARD: its shards, the root unit (gathered for the whole forward), the running block and the
// prefetched next one; SHARD_GRAD_OP: shards plus every gathered unit; NO_SHARD: the whole model.
std::int64_t sharded_peak_bytes(const Units& u, bool sharded, ShardingStrategy strategy, int world, int bytes) {
  if (!sharded || world <= 1 || strategy == ShardingStrategy::kNoShard) return u.total() * bytes;
  const std::int64_t shards = ceil_div(u.root, world) + ceil_div(u.block, world) * u.blocks;
  if (strategy == ShardingStrategy::kShardGradOp) return (shards + u.total()) * bytes;
  return (shards + u.root + std::min(u.blocks, 2) * u.block) * bytes;
}

Units dit_units(const ModelDims& m) {
  const std::int64_t d = m.dim, f = m.ffn_dim;
  Units u;
  u.blocks = m.num_layers;
  // Per block: self and cross attention (q, k, v, o with bias, RMSNorm on q and k), norm3 (affine),
  // the FFN and the modulation table; i2v adds k_img, v_img and norm_k_img.
  u.block = 8 * (d * d + d) + 4 * d + 2 * d + (d * f + f + f * d + d) + 6 * d;
  if (m.i2v && m.clip) u.block += 2 * (d * d + d) + d;
  const std::int64_t patch = 4 * m.in_dim * d + d;  // Conv3d k=(1,2,2)
  const std::int64_t text = std::int64_t(m.text_dim) * d + d + d * d + d;
  const std::int64_t time = std::int64_t(m.freq_dim) * d + d + d * d + d + 6 * d * d + 6 * d;
  const std::int64_t head = d * 4 * m.out_dim + 4 * m.out_dim + 2 * d;
  // i2v CLIP projection: LayerNorm(c), Linear(c, c), Linear(c, dim), LayerNorm(dim), c = CLIP width.
  const std::int64_t c = m.clip_dim;
  const std::int64_t img = m.i2v && m.clip ? 2 * c + c * c + c + c * d + d + 2 * d : 0;
  u.root = patch + text + time + head + img;
  return u;
}

Units t5_units(const ModelDims& m) {
  const std::int64_t d = m.t5_dim, f = m.t5_ffn;
  Units u;
  u.blocks = m.t5_layers;
  // Per block: two RMSNorms, q/k/v/o without bias, gated FFN (gate, fc1, fc2), relative position table.
  u.block = 2 * d + 4 * d * d + 3 * d * f + std::int64_t(m.t5_buckets) * m.t5_heads;
  u.root = std::int64_t(m.t5_vocab) * d + d;  // token embedding, final norm
  return u;
}

// A model's units rescaled so that they add up to an exact count read from its files.
Units with_total(Units u, std::int64_t exact) {
  if (exact <= 0 || u.total() == exact) return u;
  const double k = static_cast<double>(exact) / static_cast<double>(u.total());
  u.root = static_cast<std::int64_t>(std::llround(u.root * k));
  u.block = (exact - u.root) / std::max(1, u.blocks);
  u.root = exact - u.block * u.blocks;
  return u;
}

// Fp8Weights::kKeep: the bytes of a model's weights scale by (bytes x others + 1 x float8) / (bytes x
// all) (units hold float8 and other weights in the same proportion: the blocks' matrices are most of
// both), and while a layer runs its weight is dequantized to float32 and then the storage dtype
// (layers.cpp LinearImpl::forward): the largest matrix of the model, `largest` elements, x (4 + bytes).
std::int64_t with_float8_kept(std::int64_t bytes_all, const Units& u, std::int64_t float8_params, int bytes,
                              std::int64_t largest) {
  if (float8_params <= 0 || u.total() <= 0) return bytes_all;
  const std::int64_t f8 = std::min(float8_params, u.total());
  const double k = static_cast<double>(bytes * (u.total() - f8) + f8) / static_cast<double>(bytes * u.total());
  return static_cast<std::int64_t>(std::llround(static_cast<double>(bytes_all) * k)) + largest * (4 + bytes);
}

struct VideoShape {
  std::int64_t latent_frames, latent_pixels, tokens, pixels_per_frame, frames;
};
VideoShape video_shape(const ModelDims& m, const EstimateSettings& s) {
  VideoShape v;
  v.latent_frames = (s.frames - 1) / 4 + 1;
  v.latent_pixels = std::int64_t(s.height / m.vae_stride) * (s.width / m.vae_stride);
  v.tokens = v.latent_frames * (s.height / (2 * m.vae_stride)) * (s.width / (2 * m.vae_stride));  // patch 2x2
  v.pixels_per_frame = std::int64_t(s.width) * s.height;
  v.frames = s.frames;
  return v;
}

// DiT forward working set of one rank (cond and uncond run one after the other). U is one float32
// [tokens, dim] tensor, A one in the compute dtype. The three candidates for a block's peak, counted
// from the engine's code (dit.cpp, rope.cpp, layers.cpp):
//  * RoPE: x and the modulated input (fp32), q, k, v, the rotated output and the float64 (re, im)
//    products of rotating one slice of tokens (2 M elements, rope.cpp);
//  * attention: the same plus the Ulysses all-to-all copies, ring K/V in flight with the partial output
//    and log-sum-exp, the output, and on the CPU the fp32 scores and probabilities of one query chunk
//    (16 M elements, layers.cpp); fused kernels on a GPU keep no scores;
//  * FFN: x, the input, the first linear's output, the GELU in place and its 0.5 x (on the CPU for
//    one slice of tokens of at most 4 M hidden elements, dit.cpp).
std::int64_t dit_activation_bytes(const ModelDims& m, const EstimateSettings& s, const VideoShape& v) {
  const DistConfig& c = s.config;
  const int sp = c.sequence_parallel_size();
  const int u = c.context_parallel() ? c.ulysses_size : 1;
  const std::int64_t local = ceil_div(v.tokens, sp);  // padded to a multiple of sp
  const int act = s.gpu ? 2 : 4;                      // block tensors: bf16 on a GPU, fp32 on the CPU
  const std::int64_t d = m.dim;
  const std::int64_t U = local * d * 4, A = local * d * act;
  const std::int64_t resident = 2 * U + 3 * A;  // x, modulated input, q, k, v
  // RoPE rotates a slice of tokens at a time in float64 (rope.cpp): the float32 output plus about ten
  // float32-sized temporaries of one slice.
  const std::int64_t rope = resident + U + 10 * std::min(U, kRopeChunkElements * 4);
  std::int64_t attn = resident + A;
  if (u > 1) attn += 3 * A;
  if (c.context_parallel() && c.ring_size > 1) attn += 4 * A;
  // The chunked reference attention (attention_mode math; ring blocks in float32 on a GPU, where no fused
  // kernel returns the log-sum-exp) holds one chunk of float32 scores and its probabilities. SDPA's fused
  // kernels (the default; Ulysses and ring blocks too) hold no score matrix: blocks of a few MiB.
  const bool chunked = c.attention_mode == AttentionMode::kMath ||
                       (s.gpu && param_bytes(s) == 4 && c.context_parallel() && c.ring_size > 1);
  if (chunked) {
    const std::int64_t queries = local * u, keys = local * u, heads = m.num_heads / u;
    attn += std::min(queries * keys * heads, kAttentionChunkElements) * 4 * 2;
  }
  // FFN: the hidden activations, its GELU and 0.5 x; on the CPU over slices of tokens (dit.cpp).
  const std::int64_t hidden =
      s.gpu ? local * std::int64_t(m.ffn_dim) : std::min(local * std::int64_t(m.ffn_dim), kFfnChunkElements);
  const std::int64_t ffn = 2 * U + 3 * hidden * act + A + (s.gpu ? 0 : U);  // CPU: + the assembled output
  // Text context (and for i2v the CLIP features) with their cross-attention keys and values.
  const std::int64_t image_tokens = m.i2v && m.clip ? m.clip_tokens : 0;
  const std::int64_t context = std::int64_t(m.text_len) * m.text_dim * 4 + image_tokens * m.clip_dim * 4 +
                               (m.text_len + image_tokens) * d * act * 4;
  // Sampler state; i2v adds the conditioning y (mask + image latent) and the concatenated input.
  const std::int64_t latent_frame = std::int64_t(v.latent_frames) * v.latent_pixels * 4;
  const std::int64_t latents =
      std::int64_t(m.z_dim) * latent_frame * 8 + (m.i2v ? (m.in_dim - m.out_dim + m.in_dim) * latent_frame : 0);
  // Step caching: a float32 residual [local, dim] per pass this rank runs (model/step_cache.h), kept
  // between steps; CFG parallel runs one pass per rank.
  const std::int64_t cache = s.step_cache ? U * (c.cfg_parallel ? 1 : 2) : 0;
  return std::max({rope, attn, ffn}) + context + latents + cache;
}

std::int64_t t5_activation_bytes(const ModelDims& m, bool gpu) {
  const std::int64_t l = m.text_len, act = gpu ? 2 : 4;
  return l * (std::int64_t(m.t5_dim) * 8 + std::int64_t(m.t5_ffn) * 3) * act + std::int64_t(m.t5_heads) * l * l * 4 * 3;
}

// The VAE decodes one latent frame (4 video frames) at a time; the largest working set is at full
// resolution with vae_dim channels. On a GPU (cuDNN, no column buffers) that is about six such tensors
// (input with its 2 cached frames, residual, normalised and convolution outputs). On the CPU (oneDNN
// convolutions, layers.cpp, and the engine's cache of large blocks, cpu_allocator.cpp) the resident
// set grows by 21 such tensors plus 200 bytes per pixel for a decode and 16 plus 250 for an encode:
// fitted on 12 decodes and 3 encodes of VAEs 8, 16 and 32 wide from 256x256 to 832x480, all within
// 4 % (docs/MEMORY.md). The decoded video is kept in float32 (chunks, then concatenated and clamped)
// and converted to 8-bit RGB.
std::int64_t vae_working_bytes(const ModelDims& m, const VideoShape& v, bool gpu, bool encode) {
  // The Wan2.2 VAE's widest stages run at half resolution (2x2 patchified): width / 4 per pixel.
  const std::int64_t width = m.vae_dec_dim == 0 ? m.vae_dim : (encode ? m.vae_dim : m.vae_dec_dim) / 4;
  const std::int64_t full_res = width * 4 * v.pixels_per_frame * 4;  // [C, 4, H, W] fp32
  if (gpu) return full_res * 6;
  return encode ? full_res * 16 + v.pixels_per_frame * 250 : full_res * 21 + v.pixels_per_frame * 200;
}

std::int64_t vae_decode_bytes(const ModelDims& m, const VideoShape& v, std::int64_t vae_params, bool gpu) {
  const std::int64_t video = 3 * v.frames * v.pixels_per_frame * 4;
  const std::int64_t working = vae_working_bytes(m, v, gpu, false) + video;
  const std::int64_t finish = video * 3 + v.frames * v.pixels_per_frame * 3;  // + uint8 RGB frames
  return vae_params * 4 + std::max(working, finish);
}

// CLIP on the start picture (a model that takes CLIP features): the tower's weights (fp16 on a GPU, as the reference's
// autocast; fp32 on the CPU) and one block's working set; or the VAE encoding [picture, black frames] at full
// resolution, which works like the decode (a smaller working set, measured) without a decoded video.
std::int64_t image_encode_bytes(const ModelDims& m, const VideoShape& v, std::int64_t vae_params, bool gpu) {
  const std::int64_t clip_params = m.clip_params > 0 ? m.clip_params : clip_param_count(m);
  const std::int64_t t = m.clip_tokens, act = gpu ? 2 : 4;
  const std::int64_t clip = !m.clip ? 0
                                    : clip_params * (gpu ? 2 : 4) + t * (6 * m.clip_dim + 2 * m.clip_mlp) * act +
                                          std::int64_t(m.clip_heads) * t * t * 4 * 2;
  const std::int64_t video_in = 3 * v.frames * v.pixels_per_frame * 4;
  const std::int64_t vae = vae_params * 4 + video_in + vae_working_bytes(m, v, gpu, true);
  return std::max(clip, vae);
}

}  // namespace

ModelDims wan21_t2v_1_3b() { return ModelDims{}; }

ModelDims wan21_i2v_14b() {
  ModelDims m = wan21_t2v_14b();
  m.name = "Wan2.1-I2V-14B";
  m.i2v = true;
  m.in_dim = 36;
  return m;
}

std::int64_t clip_param_count(const ModelDims& m) {
  const std::int64_t c = m.clip_dim, f = m.clip_mlp;
  const std::int64_t block = 4 * c + (3 * c * c + 3 * c) + (c * c + c) + 2 * c * f + f + c;
  const std::int64_t patch = 14 * 14 * 3 * c;
  return patch + c + std::int64_t(m.clip_tokens) * c + 2 * c + (m.clip_layers - 1) * block;
}

ModelDims wan21_t2v_14b() {
  ModelDims m;
  m.name = "Wan2.1-T2V-14B";
  m.dim = 5120;
  m.ffn_dim = 13824;
  m.num_heads = 40;
  m.num_layers = 40;
  return m;
}

ModelDims wan22_t2v_a14b() {
  ModelDims m = wan21_t2v_14b();
  m.name = "Wan2.2-T2V-A14B";
  m.experts = 2;
  return m;
}

ModelDims wan22_ti2v_5b() {
  ModelDims m;
  m.name = "Wan2.2-TI2V-5B";
  m.ti2v = true;
  m.dim = 3072;
  m.ffn_dim = 14336;
  m.num_heads = 24;
  m.num_layers = 30;
  m.in_dim = m.out_dim = m.z_dim = 48;
  m.vae_dim = 160;
  m.vae_dec_dim = 256;
  m.vae_stride = 16;
  m.vae_params = kVae22Params;
  return m;
}

ModelDims wan22_i2v_a14b() {
  ModelDims m = wan22_t2v_a14b();
  m.name = "Wan2.2-I2V-A14B";
  m.i2v = true;
  m.clip = false;
  m.in_dim = 36;
  return m;
}

std::int64_t dit_param_count(const ModelDims& m) { return dit_units(m).total(); }
std::int64_t t5_param_count(const ModelDims& m) { return t5_units(m).total(); }
std::int64_t vae_param_count(const ModelDims& m) {
  const double k = static_cast<double>(m.vae_dim) / 96.0;
  return static_cast<std::int64_t>(126.9e6 * k * k);
}

MemoryEstimate estimate_memory(const ModelDims& model, const EstimateSettings& s, int rank) {
  const DistConfig& c = s.config;
  const int world = std::max(1, c.world_size);
  const int pb = param_bytes(s);
  const VideoShape v = video_shape(model, s);
  MemoryEstimate e;

  const Units dit = with_total(dit_units(model), model.dit_params);
  const bool keep_float8 = s.fp8_weights == Fp8Weights::kKeep;
  e.weights = sharded_peak_bytes(dit, c.dit_fsdp, c.sharding_strategy, world, pb);
  if (keep_float8)
    e.weights = with_float8_kept(e.weights, dit, model.dit_float8_params, pb,
                                 std::int64_t(model.dim) * std::max(model.dim, model.ffn_dim));
  // Wan2.2 A14B: both experts stay loaded, unless the idle one waits in host memory (on a GPU).
  if (!(s.gpu && c.idle_expert_on_host && !c.dit_fsdp)) e.weights *= std::max(1, model.experts);
  e.activations = dit_activation_bytes(model, s, v);
  // On the CPU the resident set holds more than the live tensors counted above: LibTorch's CPU
  // temporaries come from glibc's heap, which the engine keeps (runtime.cpp) and which fragments.
  // Measured 1.6x to 4.4x the count (docs/MEMORY.md); 2x is the compromise over those runs.
  if (!s.gpu) e.activations *= 2;

  const bool t5_here = !(s.gpu && c.t5_cpu);
  if (t5_here) {
    const Units t5 = with_total(t5_units(model), model.t5_params);
    std::int64_t weights = sharded_peak_bytes(t5, c.t5_fsdp, c.sharding_strategy, world, pb);
    if (keep_float8)
      weights = with_float8_kept(weights, t5, model.t5_float8_params, pb,
                                 std::int64_t(model.t5_dim) * std::max(model.t5_dim, model.t5_ffn));
    e.text_encoder = weights + t5_activation_bytes(model, s.gpu);
  }
  const std::int64_t vae_params = model.vae_params > 0 ? model.vae_params : vae_param_count(model);
  if (rank == 0) e.vae_decode = vae_decode_bytes(model, v, vae_params, s.gpu);
  if (model.i2v) e.image_encoder = image_encode_bytes(model, v, vae_params, s.gpu);
  if (model.ti2v && s.picture) {
    // TI2V-5B image-to-video: the Wan2.2 VAE encodes the picture alone, one frame (textimage2video.py i2v).
    VideoShape one = v;
    one.frames = one.latent_frames = 1;
    e.image_encoder = image_encode_bytes(model, one, vae_params, s.gpu);
  }

  // Fixed costs: CUDA context and caching-allocator slack on a GPU; on the CPU the resident code and
  // buffers of a LibTorch process: a worker's peak before it loads anything (WAN_MEMORY_REPORT=1, phase
  // "starting"): 371 MiB with LibTorch 2.11 and its CUDA libraries; in the CPU-only variant a process
  // starts at 189 MiB (`wan make-demo-model`; 157-162 MiB with Debian's 1.13; docs/MEMORY.md).
  e.runtime = s.gpu ? 600 * kMiB : (WAN_WITH_CUDA ? 370 : 190) * kMiB;

  const std::int64_t sampling = e.weights + e.activations;
  e.peak_phase = "sampling";
  std::int64_t top = sampling;
  if (e.text_encoder > top) {
    top = e.text_encoder;
    e.peak_phase = "text";
  }
  if (e.image_encoder > top) {
    top = e.image_encoder;
    e.peak_phase = "image";
  }
  if (e.vae_decode > top) {
    top = e.vae_decode;
    e.peak_phase = "decoding";
  }
  e.peak = top + e.runtime;
  return e;
}

}  // namespace wan
