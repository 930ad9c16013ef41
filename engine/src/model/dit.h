// WanModel, the Wan2.1 diffusion transformer (t2v and i2v). Registered names equal the official
// state_dict keys. The forward pass is split into stages (embed, condition, blocks, head) so the
// distributed runtime can run blocks on a shard of the tokens with its own attention.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>

#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "model/dit_config.h"
#include "model/layers.h"
#include "model/residency.h"
#include "model/rope.h"

namespace wan {

class StepCache;

// The timestep of each token of a forward. Wan2.1 and Wan2.2 A14B: one t for every token (a double
// converts to it). Wan2.2 TI2V-5B: the model takes t of shape [1, seq_len] (wan2.2 model.py:460-468),
// built per step as (mask2[0][0][:, ::2, ::2] * t).flatten() (textimage2video.py:373-378), so in
// image-to-video the tokens of latent frame 0 get t = 0. Held as runs over the tokens in (frame, h/2,
// w/2) raster order: `runs[i]` covers runs[i].count tokens after the previous runs, the last run every
// token after those (padding included).
struct TokenTimesteps {
  struct Run {
    std::int64_t count = 0;  // ignored for the last run
    double t = 0;
  };
  TokenTimesteps(double t = 0) : runs{{0, t}} {}  // NOLINT(google-explicit-constructor): a scalar t is the common case
  // TI2V image-to-video: `first_tokens` tokens (latent frame 0) at `first`, the rest at `t`.
  static TokenTimesteps first_frame(double t, std::int64_t first_tokens, double first = 0);
  // One value per token, run-length encoded (eval-case's t_tokens_i).
  static TokenTimesteps per_token(const std::vector<double>& t);
  std::vector<Run> runs;
};

// Per-forward conditioning shared by all blocks (every rank holds all of it).
struct DitConditioning {
  // R = the distinct timesteps of the forward (1, or 2 for TI2V image-to-video).
  torch::Tensor e;                // [R, dim] float32: time embedding (the head's modulation input)
  torch::Tensor e0;               // [R, 6, dim] float32: block modulation input
  torch::Tensor context;          // [1, img_tokens + text_len, dim] in the weight dtype
  std::int64_t image_tokens = 0;  // leading CLIP tokens in context (i2v), else 0
  // Which row of e/e0 each token takes: (first global token, row), ascending from token 0.
  std::vector<std::pair<std::int64_t, std::int64_t>> rows_from{{0, 0}};
  // The global index of the first token of the x the blocks and head get (sequence parallel: the
  // rank's chunk start; 0 otherwise).
  std::int64_t token_offset = 0;
};

// The local tokens [begin, begin + count) of an x of `local_tokens` tokens that take row `row`.
struct TokenGroup {
  std::int64_t begin = 0, count = 0, row = 0;
};
std::vector<TokenGroup> token_groups(const DitConditioning& cond, std::int64_t local_tokens);

// Self-attention core: q, k, v [1, L_local, n, d] (RoPE applied) -> [1, L_local, n, d].
using SelfAttentionFn = std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&)>;

struct DitSelfAttentionImpl : torch::nn::Module {
  DitSelfAttentionImpl(const DitConfig& c, const ModelPlacement& p);
  // x: [1, L, dim] float32; cos/sin: [L, d/2]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const SelfAttentionFn& attend);
  std::int64_t num_heads, head_dim;
  double eps;
  torch::ScalarType compute_dtype;
  Linear q{nullptr}, k{nullptr}, v{nullptr}, o{nullptr};
  Gain norm_q{nullptr}, norm_k{nullptr};
};
TORCH_MODULE(DitSelfAttention);

struct DitCrossAttentionImpl : torch::nn::Module {
  DitCrossAttentionImpl(const DitConfig& c, const ModelPlacement& p);
  torch::Tensor forward(const torch::Tensor& x, const DitConditioning& cond);
  std::int64_t num_heads, head_dim;
  double eps;
  torch::ScalarType compute_dtype;
  Linear q{nullptr}, k{nullptr}, v{nullptr}, o{nullptr}, k_img{nullptr}, v_img{nullptr};
  Gain norm_q{nullptr}, norm_k{nullptr}, norm_k_img{nullptr};
};
TORCH_MODULE(DitCrossAttention);

struct DitBlockImpl : torch::nn::Module {
  DitBlockImpl(const DitConfig& c, const ModelPlacement& p);
  // x: [1, L_local, dim] float32 residual stream -> same shape.
  torch::Tensor forward(const torch::Tensor& x, const DitConditioning& cond, const torch::Tensor& cos,
                        const torch::Tensor& sin, const SelfAttentionFn& attend);
  // ffn.2(GELU(ffn.0(h))), on the CPU over slices of tokens (attention_budget.h).
  torch::Tensor ffn(const torch::Tensor& h);
  double eps;
  torch::Tensor modulation;  // [1, 6, dim] float32
  DitSelfAttention self_attn{nullptr};
  Affine norm3{nullptr};
  DitCrossAttention cross_attn{nullptr};
  Linear ffn0{nullptr}, ffn2{nullptr};
};
TORCH_MODULE(DitBlock);

struct WanModelImpl : torch::nn::Module {
  WanModelImpl(const DitConfig& config, const ModelPlacement& placement);

  // x [in_dim - y_channels, F, H, W] (+ y [.., F, H, W] for i2v) -> tokens [1, L, dim] (weight dtype).
  torch::Tensor embed(const torch::Tensor& x, const torch::Tensor& y, TokenGrid* grid);
  // t: the (integer-valued) timestep of each token; context: [L_text, text_dim] (L_text <= text_len);
  // clip_fea: [1, 257, clip_dim] for Wan2.1 i2v.
  DitConditioning condition(const TokenTimesteps& t, const torch::Tensor& context, const torch::Tensor& clip_fea);
  // x: [1, L, dim] float32 -> [1, L, prod(patch) * out_dim] float32
  torch::Tensor head_forward(const torch::Tensor& x, const DitConditioning& cond);
  // tokens [L >= grid.count(), prod(patch) * out_dim] -> [out_dim, F, H, W]
  torch::Tensor unpatchify(const torch::Tensor& tokens, const TokenGrid& grid) const;

  // The blocks on x [1, L_local, dim] float32, each made present by the residency (if any) just
  // before it runs.
  torch::Tensor run_blocks(torch::Tensor x, const DitConditioning& cond, const torch::Tensor& cos,
                           const torch::Tensor& sin, const SelfAttentionFn& attend);

  // Single-process forward: every stage on all tokens. Returns [out_dim, F, H, W] float32.
  torch::Tensor forward(const torch::Tensor& x, const TokenTimesteps& t, const torch::Tensor& context,
                        const torch::Tensor& clip_fea = {}, const torch::Tensor& y = {});

  // Wan2.2 A14B's idle expert (DistConfig::idle_expert_on_host): move_to brings the weights (and the
  // placement the forward uses) to `device`; release_weights frees them (the module cannot run after).
  // Both throw wan::Error(kInternal) for weights the module does not own alone (a sharding residency,
  // float8 weights kept with their scales).
  void move_to(torch::Device device);
  // DiT forwards run by this module (forward() and the sequence-parallel forward count one each).
  std::int64_t forward_count = 0;
  void release_weights();

  const DitConfig& config() const { return config_; }
  const ModelPlacement& placement() const { return placement_; }
  const RopeTable& rope() const { return *rope_; }

  DitConfig config_;
  ModelPlacement placement_;
  std::unique_ptr<RopeTable> rope_;
  Conv patch_embedding{nullptr};
  Linear text_embedding0{nullptr}, text_embedding2{nullptr};
  Linear time_embedding0{nullptr}, time_embedding2{nullptr};
  Linear time_projection1{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  Linear head_head{nullptr};
  torch::Tensor head_modulation;  // [1, 2, dim] float32
  Affine img_emb0{nullptr}, img_emb4{nullptr};
  Linear img_emb1{nullptr}, img_emb3{nullptr};
  torch::Tensor img_emb_pos;  // flf2v
  // Sharded weights (FSDP-style); null when every parameter is fully loaded. Callers of embed,
  // condition and head_forward hold a ForwardScope on it.
  std::shared_ptr<ParameterResidency> residency;
  // Step caching (model/step_cache.h): set by the sampling loop for a run with --cache; run_blocks then
  // asks it whether to run the blocks. Null: the blocks always run.
  std::shared_ptr<StepCache> step_cache;
  // Set by the distributed runtime: true when every rank of the world passes true (an all-reduce); the
  // sampling loop gives it to the step cache. Empty: a world of one.
  std::function<bool(bool)> all_ranks_agree;
};
TORCH_MODULE(WanModel);

// The sinusoidal timestep embedding ([cos | sin], float64 math) -> [1, dim] float32.
torch::Tensor sinusoidal_embedding(std::int64_t dim, double t);

}  // namespace wan
