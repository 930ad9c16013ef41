#include "model/dit.h"

#include <torch/torch.h>

#include <algorithm>

#include "model/attention_budget.h"
#include "model/step_cache.h"
#include "wan/error.h"

namespace wan {
namespace {

// A container whose children are registered under indices ("0", "2") as nn.Sequential names them.
std::shared_ptr<torch::nn::Module> indexed(torch::nn::Module& parent, const std::string& name) {
  return parent.register_module(name, std::make_shared<torch::nn::Module>());
}

}  // namespace

torch::Tensor sinusoidal_embedding(std::int64_t dim, double t) {
  const std::int64_t half = dim / 2;
  auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  torch::Tensor freqs = torch::pow(10000.0, -torch::arange(half, f64) / static_cast<double>(half));
  torch::Tensor arg = freqs * t;
  return torch::cat({torch::cos(arg), torch::sin(arg)}).to(torch::kFloat32).unsqueeze(0);
}

TokenTimesteps TokenTimesteps::first_frame(double t, std::int64_t first_tokens, double first) {
  TokenTimesteps out(t);
  if (first_tokens > 0) out.runs = {{first_tokens, first}, {0, t}};
  return out;
}

TokenTimesteps TokenTimesteps::per_token(const std::vector<double>& t) {
  if (t.empty()) throw Error(ErrorCode::kInvalidArgument, "per-token timesteps: no tokens");
  TokenTimesteps out(t[0]);
  out.runs.clear();
  for (double v : t) {
    if (!out.runs.empty() && out.runs.back().t == v)
      ++out.runs.back().count;
    else
      out.runs.push_back({1, v});
  }
  return out;
}

std::vector<TokenGroup> token_groups(const DitConditioning& cond, std::int64_t local_tokens) {
  std::vector<TokenGroup> out;
  const std::int64_t lo = cond.token_offset, hi = cond.token_offset + local_tokens;
  for (std::size_t i = 0; i < cond.rows_from.size(); ++i) {
    const std::int64_t begin = std::max(lo, cond.rows_from[i].first);
    const std::int64_t end = i + 1 < cond.rows_from.size() ? std::min(hi, cond.rows_from[i + 1].first) : hi;
    if (end > begin) out.push_back({begin - lo, end - begin, cond.rows_from[i].second});
  }
  return out;
}

DitSelfAttentionImpl::DitSelfAttentionImpl(const DitConfig& c, const ModelPlacement& p)
    : num_heads(c.num_heads), head_dim(c.head_dim()), eps(c.eps), compute_dtype(p.compute_dtype) {
  q = register_module("q", Linear(c.dim, c.dim, true, p));
  k = register_module("k", Linear(c.dim, c.dim, true, p));
  v = register_module("v", Linear(c.dim, c.dim, true, p));
  o = register_module("o", Linear(c.dim, c.dim, true, p));
  norm_q = register_module("norm_q", Gain(std::vector<std::int64_t>{c.dim}, p.fp32()));
  norm_k = register_module("norm_k", Gain(std::vector<std::int64_t>{c.dim}, p.fp32()));
}

torch::Tensor DitSelfAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                                            const SelfAttentionFn& attend) {
  const std::int64_t L = x.size(1);
  // [1, L, n, d]
  torch::Tensor qh = wan_rms_norm(q(x), norm_q->weight, eps).view({1, L, num_heads, head_dim});
  torch::Tensor kh = wan_rms_norm(k(x), norm_k->weight, eps).view({1, L, num_heads, head_dim});
  torch::Tensor vh = v(x).view({1, L, num_heads, head_dim});
  qh = apply_rope(qh, cos, sin).to(compute_dtype);
  kh = apply_rope(kh, cos, sin).to(compute_dtype);
  torch::Tensor out = attend(qh, kh, vh.to(compute_dtype));  // [1, L, n, d]
  return o(out.flatten(2));
}

DitCrossAttentionImpl::DitCrossAttentionImpl(const DitConfig& c, const ModelPlacement& p)
    : num_heads(c.num_heads), head_dim(c.head_dim()), eps(c.eps), compute_dtype(p.compute_dtype) {
  q = register_module("q", Linear(c.dim, c.dim, true, p));
  k = register_module("k", Linear(c.dim, c.dim, true, p));
  v = register_module("v", Linear(c.dim, c.dim, true, p));
  o = register_module("o", Linear(c.dim, c.dim, true, p));
  norm_q = register_module("norm_q", Gain(std::vector<std::int64_t>{c.dim}, p.fp32()));
  norm_k = register_module("norm_k", Gain(std::vector<std::int64_t>{c.dim}, p.fp32()));
  if (c.has_clip_input()) {
    k_img = register_module("k_img", Linear(c.dim, c.dim, true, p));
    v_img = register_module("v_img", Linear(c.dim, c.dim, true, p));
    norm_k_img = register_module("norm_k_img", Gain(std::vector<std::int64_t>{c.dim}, p.fp32()));
  }
}

torch::Tensor DitCrossAttentionImpl::forward(const torch::Tensor& x, const DitConditioning& cond) {
  const std::int64_t L = x.size(1);
  const torch::Tensor& ctx = cond.context;
  const std::int64_t img = cond.image_tokens;
  const torch::Tensor txt = img > 0 ? ctx.narrow(1, img, ctx.size(1) - img) : ctx;
  // [1, L, n, d] queries; [1, L_ctx, n, d] keys and values
  torch::Tensor qh = wan_rms_norm(q(x), norm_q->weight, eps).view({1, L, num_heads, head_dim}).to(compute_dtype);
  torch::Tensor kh = wan_rms_norm(k(txt), norm_k->weight, eps).view({1, -1, num_heads, head_dim}).to(compute_dtype);
  torch::Tensor vh = v(txt).view({1, -1, num_heads, head_dim}).to(compute_dtype);
  torch::Tensor out = attention(qh, kh, vh).flatten(2);
  if (img > 0) {
    const torch::Tensor ctx_img = ctx.narrow(1, 0, img);
    torch::Tensor ki =
        wan_rms_norm(k_img(ctx_img), norm_k_img->weight, eps).view({1, -1, num_heads, head_dim}).to(compute_dtype);
    torch::Tensor vi = v_img(ctx_img).view({1, -1, num_heads, head_dim}).to(compute_dtype);
    out = out + attention(qh, ki, vi).flatten(2);
  }
  return o(out);
}

DitBlockImpl::DitBlockImpl(const DitConfig& c, const ModelPlacement& p) : eps(c.eps) {
  modulation = register_parameter("modulation", uninitialized({1, 6, c.dim}, p.fp32()), false);
  self_attn = register_module("self_attn", DitSelfAttention(c, p));
  norm3 = register_module("norm3", Affine(c.dim, p.fp32()));
  cross_attn = register_module("cross_attn", DitCrossAttention(c, p));
  auto ffn = indexed(*this, "ffn");
  ffn0 = ffn->register_module("0", Linear(c.dim, c.ffn_dim, true, p));
  ffn2 = ffn->register_module("2", Linear(c.ffn_dim, c.dim, true, p));
}

torch::Tensor DitBlockImpl::forward(const torch::Tensor& x_in, const DitConditioning& cond, const torch::Tensor& cos,
                                    const torch::Tensor& sin, const SelfAttentionFn& attend) {
  // [R, 6, dim] float32; each row's chunks [1, 1, dim]: shift/scale/gate for attention, then for the FFN
  // (wan2.2 model.py WanAttentionBlock: per-token e with TI2V's per-token timesteps).
  const torch::Tensor mod = modulation + cond.e0;
  const std::vector<TokenGroup> groups = token_groups(cond, x_in.size(1));
  std::vector<std::vector<torch::Tensor>> rows;
  for (std::int64_t r = 0; r < mod.size(0); ++r) rows.push_back(mod.narrow(0, r, 1).chunk(6, 1));
  // n * (1 + scale) + shift, and y * gate, each token with its row.
  const auto modulate = [&](const torch::Tensor& n, int shift, int scale) {
    if (groups.size() == 1) return n * (1 + rows[groups[0].row][scale]) + rows[groups[0].row][shift];
    torch::Tensor out = torch::empty_like(n);
    for (const TokenGroup& g : groups)
      out.narrow(1, g.begin, g.count)
          .copy_(n.narrow(1, g.begin, g.count) * (1 + rows[g.row][scale]) + rows[g.row][shift]);
    return out;
  };
  const auto gated = [&](const torch::Tensor& y, int gate) {
    if (groups.size() == 1) return y * rows[groups[0].row][gate];
    // float32 as the one-group product is (y in the compute dtype times a float32 gate): never rounded back.
    torch::Tensor out = torch::empty(y.sizes(), y.options().dtype(torch::kFloat32));
    for (const TokenGroup& g : groups)
      out.narrow(1, g.begin, g.count).copy_(y.narrow(1, g.begin, g.count) * rows[g.row][gate]);
    return out;
  };
  torch::Tensor x = x_in;
  torch::Tensor h = modulate(layer_norm_f32(x, {}, {}, eps).to(torch::kFloat32), 0, 1);
  x = x + gated(self_attn(h, cos, sin, attend), 2);
  x = x + cross_attn(layer_norm_f32(x, norm3->weight, norm3->bias, eps), cond);
  h = modulate(layer_norm_f32(x, {}, {}, eps).to(torch::kFloat32), 3, 4);
  return x + gated(ffn(h), 5);
}

torch::Tensor DitBlockImpl::ffn(const torch::Tensor& h) {
  const std::int64_t L = h.size(1), width = ffn0->weight.size(0);
  const std::int64_t chunk = h.is_cuda() ? L : rows_per_slice(kFfnChunkElements, width);
  if (chunk >= L) return ffn2(gelu_tanh(ffn0(h)));
  // CPU: a slice of tokens at a time (rows are independent), so the hidden activations stay small.
  torch::Tensor out;
  for (std::int64_t l0 = 0; l0 < L; l0 += chunk) {
    const torch::Tensor part = ffn2(gelu_tanh(ffn0(h.narrow(1, l0, std::min(chunk, L - l0)))));
    if (!out.defined()) out = torch::empty({h.size(0), L, part.size(2)}, part.options());
    out.narrow(1, l0, part.size(1)).copy_(part);
  }
  return out;
}

WanModelImpl::WanModelImpl(const DitConfig& c, const ModelPlacement& p) : config_(c), placement_(p) {
  c.validate("DiT config");
  rope_ = std::make_unique<RopeTable>(c.head_dim());
  patch_embedding = register_module(
      "patch_embedding",
      Conv(c.in_dim, c.dim, std::vector<std::int64_t>{c.patch_size[0], c.patch_size[1], c.patch_size[2]}, true, p));
  auto te = indexed(*this, "text_embedding");
  text_embedding0 = te->register_module("0", Linear(c.text_dim, c.dim, true, p));
  text_embedding2 = te->register_module("2", Linear(c.dim, c.dim, true, p));
  auto tm = indexed(*this, "time_embedding");
  time_embedding0 = tm->register_module("0", Linear(c.freq_dim, c.dim, true, p.fp32()));
  time_embedding2 = tm->register_module("2", Linear(c.dim, c.dim, true, p.fp32()));
  auto tp = indexed(*this, "time_projection");
  time_projection1 = tp->register_module("1", Linear(c.dim, 6 * c.dim, true, p.fp32()));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (std::int64_t i = 0; i < c.num_layers; ++i) blocks->push_back(DitBlock(c, p));
  auto head = indexed(*this, "head");
  const std::int64_t patch = c.patch_size[0] * c.patch_size[1] * c.patch_size[2];
  head_head = head->register_module("head", Linear(c.dim, patch * c.out_dim, true, p.fp32()));
  head_modulation = head->register_parameter("modulation", uninitialized({1, 2, c.dim}, p.fp32()), false);
  if (c.has_clip_input()) {
    auto img = indexed(*this, "img_emb");
    auto proj = img->register_module("proj", std::make_shared<torch::nn::Module>());
    img_emb0 = proj->register_module("0", Affine(c.clip_dim, p.fp32()));
    img_emb1 = proj->register_module("1", Linear(c.clip_dim, c.clip_dim, true, p));
    img_emb3 = proj->register_module("3", Linear(c.clip_dim, c.dim, true, p));
    img_emb4 = proj->register_module("4", Affine(c.dim, p.fp32()));
    if (c.kind == DitKind::kFLF2V)
      img_emb_pos = img->register_parameter("emb_pos", uninitialized({1, 514, c.clip_dim}, p.fp32()), false);
  }
}

torch::Tensor WanModelImpl::embed(const torch::Tensor& x, const torch::Tensor& y, TokenGrid* grid) {
  torch::Tensor in = y.defined() ? torch::cat({x, y.to(x.scalar_type())}, 0) : x;
  if (in.dim() != 4 || in.size(0) != config_.in_dim)
    throw Error(ErrorCode::kInvalidArgument, "DiT input must be [" + std::to_string(config_.in_dim) +
                                                 ", F, H, W] (latent channels plus image conditioning for i2v)");
  const auto& ps = config_.patch_size;
  if (in.size(1) % ps[0] || in.size(2) % ps[1] || in.size(3) % ps[2])
    throw Error(ErrorCode::kInvalidArgument, "latent frames/height/width must be multiples of the patch size");
  // [1, dim, F', H', W'] -> [1, L, dim]
  torch::Tensor t = patch_embedding->forward(in.unsqueeze(0).to(placement_.device), {ps[0], ps[1], ps[2]}, {0, 0, 0});
  grid->frames = t.size(2);
  grid->height = t.size(3);
  grid->width = t.size(4);
  return t.flatten(2).transpose(1, 2).contiguous();
}

DitConditioning WanModelImpl::condition(const TokenTimesteps& t, const torch::Tensor& context,
                                        const torch::Tensor& clip_fea) {
  DitConditioning cond;
  // One embedding per distinct timestep (the reference embeds every token's t; equal t, equal rows).
  std::vector<double> values;
  std::vector<torch::Tensor> sinusoids;
  cond.rows_from.clear();
  std::int64_t begin = 0;
  for (const TokenTimesteps::Run& run : t.runs) {
    const auto at = std::find(values.begin(), values.end(), run.t);
    const std::int64_t row = at - values.begin();
    if (at == values.end()) {
      values.push_back(run.t);
      sinusoids.push_back(sinusoidal_embedding(config_.freq_dim, run.t));
    }
    if (cond.rows_from.empty() || cond.rows_from.back().second != row) cond.rows_from.emplace_back(begin, row);
    begin += run.count;
  }
  const torch::Tensor sin_emb = torch::cat(sinusoids, 0).to(placement_.device);  // [R, freq_dim]
  const std::int64_t R = sin_emb.size(0);
  cond.e = time_embedding2(torch::silu(time_embedding0(sin_emb)));            // [R, dim]
  cond.e0 = time_projection1(torch::silu(cond.e)).view({R, 6, config_.dim});  // [R, 6, dim]
  if (context.dim() != 2 || context.size(1) != config_.text_dim)
    throw Error(ErrorCode::kInvalidArgument, "text context must be [L, " + std::to_string(config_.text_dim) + "]");
  if (context.size(0) > config_.text_len)
    throw Error(ErrorCode::kInvalidArgument, "text context has " + std::to_string(context.size(0)) +
                                                 " tokens, more than text_len " + std::to_string(config_.text_len));
  // Zero rows pad the text to text_len; they are attended to, as in the reference.
  torch::Tensor padded = torch::zeros({1, config_.text_len, config_.text_dim}, placement_.fp32());
  padded.narrow(1, 0, context.size(0)).copy_(context.unsqueeze(0));
  cond.context = text_embedding2(gelu_tanh(text_embedding0(padded)));  // [1, text_len, dim]
  if (config_.has_clip_input()) {
    if (!clip_fea.defined())
      throw Error(ErrorCode::kInvalidArgument, "an image-to-video model needs CLIP image features");
    torch::Tensor f = clip_fea.to(placement_.device).to(torch::kFloat32);
    if (f.dim() == 2) f = f.unsqueeze(0);
    if (config_.kind == DitKind::kFLF2V) f = f + img_emb_pos.narrow(1, 0, f.size(1));
    torch::Tensor h = layer_norm_f32(f, img_emb0->weight, img_emb0->bias, 1e-5);
    h = img_emb3(gelu_erf(img_emb1(h)));
    h = layer_norm_f32(h, img_emb4->weight, img_emb4->bias, 1e-5);  // [1, 257, dim]
    cond.image_tokens = h.size(1);
    cond.context = torch::cat({h.to(cond.context.scalar_type()), cond.context}, 1);
  }
  return cond;
}

torch::Tensor WanModelImpl::head_forward(const torch::Tensor& x, const DitConditioning& cond) {
  // [1, 2, dim]: shift, scale from the time embedding e (not e0)
  const torch::Tensor m = head_modulation + cond.e.unsqueeze(1);  // [R, 2, dim]
  const torch::Tensor n = layer_norm_f32(x.to(torch::kFloat32), {}, {}, config_.eps);
  const std::vector<TokenGroup> groups = token_groups(cond, x.size(1));
  const auto shift_scale = [&](std::int64_t row) { return m.narrow(0, row, 1).chunk(2, 1); };
  if (groups.size() == 1) {
    const auto parts = shift_scale(groups[0].row);
    return head_head(n * (1 + parts[1]) + parts[0]);
  }
  torch::Tensor h = torch::empty_like(n);
  for (const TokenGroup& g : groups) {
    const auto parts = shift_scale(g.row);
    h.narrow(1, g.begin, g.count).copy_(n.narrow(1, g.begin, g.count) * (1 + parts[1]) + parts[0]);
  }
  return head_head(h);
}

namespace {
void check_owns_weights(const WanModelImpl& m, const char* what) {
  if (m.residency || m.placement().keep_float8)
    throw Error(ErrorCode::kInternal, std::string(what) + ": the weights are sharded or kept in float8");
}
}  // namespace

void WanModelImpl::move_to(torch::Device device) {
  check_owns_weights(*this, "WanModel::move_to");
  torch::NoGradGuard no_grad;
  to(device);
  placement_.device = device;
}

void WanModelImpl::release_weights() {
  check_owns_weights(*this, "WanModel::release_weights");
  torch::NoGradGuard no_grad;
  for (torch::Tensor& p : parameters()) p.set_data(torch::empty({0}, p.options()));
  for (torch::Tensor& b : buffers()) b.set_data(torch::empty({0}, b.options()));
}

torch::Tensor WanModelImpl::unpatchify(const torch::Tensor& tokens, const TokenGrid& g) const {
  const auto& ps = config_.patch_size;
  const std::int64_t c = config_.out_dim;
  // [F, H, W, pt, ph, pw, c] -> [c, F, pt, H, ph, W, pw]
  torch::Tensor u = tokens.narrow(0, 0, g.count()).reshape({g.frames, g.height, g.width, ps[0], ps[1], ps[2], c});
  u = u.permute({6, 0, 3, 1, 4, 2, 5});
  return u.reshape({c, g.frames * ps[0], g.height * ps[1], g.width * ps[2]}).to(torch::kFloat32);
}

torch::Tensor WanModelImpl::run_blocks(torch::Tensor x, const DitConditioning& cond, const torch::Tensor& cos,
                                       const torch::Tensor& sin, const SelfAttentionFn& attend) {
  const auto all_blocks = [&](const torch::Tensor& in) {
    torch::Tensor h = in;
    for (std::size_t i = 0; i < blocks->size(); ++i) {
      if (residency) residency->before_block(static_cast<int>(i));
      h = blocks[i]->as<DitBlockImpl>()->forward(h, cond, cos, sin, attend);
      if (residency) residency->after_block(static_cast<int>(i));
    }
    return h;
  };
  if (step_cache) return step_cache->run(x, cond, all_blocks);
  return all_blocks(x);
}

torch::Tensor WanModelImpl::forward(const torch::Tensor& x, const TokenTimesteps& t, const torch::Tensor& context,
                                    const torch::Tensor& clip_fea, const torch::Tensor& y) {
  torch::NoGradGuard no_grad;
  ForwardScope scope(residency.get());
  ++forward_count;
  TokenGrid grid;
  torch::Tensor tokens = embed(x, y, &grid);
  const DitConditioning cond = condition(t, context.to(placement_.device), clip_fea);
  auto [cos, sin] = rope_->for_tokens(grid, 0, grid.count(), placement_.device);
  const SelfAttentionFn attend = [](const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
    return attention(q, k, v);
  };
  torch::Tensor h = tokens.to(torch::kFloat32);
  h = run_blocks(h, cond, cos, sin, attend);
  return unpatchify(head_forward(h, cond).squeeze(0), grid);
}

}  // namespace wan
