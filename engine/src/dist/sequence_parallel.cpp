#include "dist/sequence_parallel.h"

#include <ATen/ops/_scaled_dot_product_flash_attention.h>
#include <ATen/ops/_scaled_dot_product_flash_attention_for_cpu.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "model/attention_budget.h"
#include "model/layers.h"
#include "wan/error.h"

namespace wan {

std::pair<torch::Tensor, torch::Tensor> attention_block_lse(const torch::Tensor& q, const torch::Tensor& k,
                                                            const torch::Tensor& v, std::int64_t valid_keys) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(2)));
  if (attention_mode() == AttentionMode::kSdpa) {
    // [1, h, L, d] views for the fused kernels; padded keys sit at the end, so they are narrowed away.
    const torch::Tensor qb = q.permute({1, 0, 2}).unsqueeze(0);
    const torch::Tensor kb = k.narrow(0, 0, valid_keys).permute({1, 0, 2}).unsqueeze(0);
    const torch::Tensor vb = v.narrow(0, 0, valid_keys).permute({1, 0, 2}).unsqueeze(0);
    const bool half = q.scalar_type() == torch::kBFloat16 || q.scalar_type() == torch::kFloat16;
    if (q.is_cpu()) {
      auto [o, lse] = at::_scaled_dot_product_flash_attention_for_cpu(qb, kb, vb, 0.0, false, {}, scale);
      return {o[0].permute({1, 0, 2}).to(torch::kFloat32), lse[0].to(torch::kFloat32)};  // [Lq, h, d], [h, Lq]
    }
    if (q.is_cuda() && half && q.size(2) <= 256) {
      const auto r = at::_scaled_dot_product_flash_attention(qb, kb, vb, 0.0, false, false, scale);
      return {std::get<0>(r)[0].permute({1, 0, 2}).to(torch::kFloat32), std::get<1>(r)[0].to(torch::kFloat32)};
    }
  }
  // [h, L, d]; padded keys sit at the end of the block, so masking them is narrowing them away.
  const torch::Tensor qh = q.permute({1, 0, 2});
  const torch::Tensor kh = k.narrow(0, 0, valid_keys).permute({1, 0, 2});
  const torch::Tensor vh = v.narrow(0, 0, valid_keys).permute({1, 0, 2});
  const std::int64_t h = qh.size(0), Lq = qh.size(1), Lk = kh.size(1);
  // The same score budget as one process's attention (layers.cpp): one chunk's fp32 scores at a time.
  const std::int64_t chunk = std::min(Lq, rows_per_slice(kAttentionChunkElements, h * Lk));
  std::vector<torch::Tensor> outs, lses;
  for (std::int64_t s = 0; s < Lq; s += chunk) {
    const torch::Tensor qc = qh.narrow(1, s, std::min(chunk, Lq - s));
    torch::Tensor scores = torch::matmul(qc, kh.transpose(-1, -2)).to(torch::kFloat32);  // [h, c, Lk]
    scores.mul_(scale);
    torch::Tensor lse = torch::logsumexp(scores, -1);  // [h, c]
    // exp(scores - lse) in place: the chunk's scores become its probabilities (one buffer, not three).
    torch::Tensor probs = scores.sub_(lse.unsqueeze(-1)).exp_().to(vh.scalar_type());
    outs.push_back(torch::matmul(probs, vh).to(torch::kFloat32));
    lses.push_back(lse);
  }
  torch::Tensor out = outs.size() == 1 ? outs[0] : torch::cat(outs, 1);
  torch::Tensor lse = lses.size() == 1 ? lses[0] : torch::cat(lses, 1);
  return {out.permute({1, 0, 2}), lse};  // [Lq, h, d], [h, Lq]
}

SequenceParallel::SequenceParallel(Communicator& sp, int ulysses_size, int ring_size)
    : sp_(sp), ulysses_size_(ulysses_size), ring_size_(ring_size) {
  if (ulysses_size < 1 || ring_size < 1 || ulysses_size * ring_size != sp.size())
    throw Error(ErrorCode::kInvalidArgument,
                "sequence parallel: ulysses_size x ring_size must equal the group size " + std::to_string(sp.size()));
  // The groups of a world that is this sequence group alone (its ranks are the group's positions).
  DistConfig alone;
  alone.world_size = sp.size();
  alone.use_context_parallel = true;
  alone.ulysses_size = ulysses_size;
  alone.ring_size = ring_size;
  const RankLayout layout = rank_layout(alone, sp.rank());
  ulysses_ = sp.split(layout.ulysses_group(), "ulysses" + std::to_string(layout.ring_index));
  ring_ = sp.split(layout.ring_group(), "ring" + std::to_string(layout.ulysses_index));
}

torch::Tensor SequenceParallel::ring_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                               std::int64_t valid_tokens) {
  // q, k, v: [Ls, h, d], the tokens of this ulysses group (Ls = U * s), a head subset.
  const std::int64_t Ls = q.size(0);
  const int R = ring_size_, ri = ring_->rank();
  torch::Tensor out = torch::zeros(q.sizes(), q.options().dtype(torch::kFloat32));
  torch::Tensor lse =
      torch::full({q.size(1), Ls}, -std::numeric_limits<float>::infinity(), q.options().dtype(torch::kFloat32));
  torch::Tensor kv = torch::stack({k, v});  // [2, Ls, h, d] travels around the ring
  for (int step = 0; step < R; ++step) {
    const int src = (ri - step + R) % R;  // the ring rank whose keys this rank holds now
    torch::Tensor next;
    if (step + 1 < R) next = ring_->send_recv(kv, (ri + 1) % R, (ri - 1 + R) % R);
    const std::int64_t valid = std::clamp<std::int64_t>(valid_tokens - static_cast<std::int64_t>(src) * Ls, 0, Ls);
    if (valid > 0) {
      auto [o, l] = attention_block_lse(q, kv[0], kv[1], valid);
      const torch::Tensor merged = torch::logaddexp(lse, l);                               // [h, Ls]
      const torch::Tensor w_old = torch::exp(lse - merged).transpose(0, 1).unsqueeze(-1);  // [Ls, h, 1]
      const torch::Tensor w_new = torch::exp(l - merged).transpose(0, 1).unsqueeze(-1);
      out = out * w_old + o * w_new;
      lse = merged;
    }
    if (next.defined()) kv = next;
  }
  return out.to(q.scalar_type());
}

torch::Tensor SequenceParallel::attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                       std::int64_t valid_tokens) {
  const std::int64_t s = q.size(1), n = q.size(2), d = q.size(3);
  const int U = ulysses_size_;
  if (n % U != 0)
    throw Error(ErrorCode::kInvalidArgument,
                "ulysses_size " + std::to_string(U) + " does not divide the " + std::to_string(n) + " attention heads");
  // Ulysses: scatter heads, gather the group's tokens: [1, s, n, d] -> [U*s, n/U, d].
  auto gather_tokens = [&](const torch::Tensor& t) {
    if (U == 1) return t[0];
    torch::Tensor parts = t[0].reshape({s, U, n / U, d}).permute({1, 0, 2, 3}).contiguous();  // part i -> rank i
    return ulysses_->all_to_all(parts).reshape({U * s, n / U, d});
  };
  torch::Tensor out;
  if (ring_size_ == 1) {
    // Ulysses alone: the group holds every token, so this is one process's attention over a head subset,
    // with its fused kernels (layers.h, attention_mode); [1, Ls, n/U, d] -> [Ls, n/U, d].
    const torch::Tensor gq = gather_tokens(q), gk = gather_tokens(k), gv = gather_tokens(v);
    out = attention(gq.unsqueeze(0), gk.unsqueeze(0), gv.unsqueeze(0), std::min(valid_tokens, gk.size(0)))[0];
  } else {
    out = ring_attention(gather_tokens(q), gather_tokens(k), gather_tokens(v), valid_tokens);
  }
  if (U == 1) return out.unsqueeze(0);
  // Inverse: scatter tokens back, gather heads: [U*s, n/U, d] -> [1, s, n, d].
  torch::Tensor back = ulysses_->all_to_all(out.reshape({U, s, n / U, d}).contiguous());  // part i: my tokens, heads i
  return back.permute({1, 0, 2, 3}).reshape({1, s, n, d});
}

torch::Tensor SequenceParallel::dit_forward(WanModelImpl& model, const torch::Tensor& x, const TokenTimesteps& t,
                                            const torch::Tensor& context, const torch::Tensor& clip_fea,
                                            const torch::Tensor& y) {
  torch::NoGradGuard no_grad;
  ForwardScope scope(model.residency.get());
  ++model.forward_count;
  const torch::Device device = model.placement().device;
  TokenGrid grid;
  torch::Tensor tokens = model.embed(x, y, &grid);  // [1, L, dim], every rank
  DitConditioning cond = model.condition(t, context.to(device), clip_fea);
  const std::int64_t L = grid.count(), P = size();
  const std::int64_t s = (L + P - 1) / P;  // chunk length; the last chunks may hold padding
  torch::Tensor h = tokens.to(torch::kFloat32);
  if (s * P > L) h = torch::cat({h, torch::zeros({1, s * P - L, h.size(2)}, h.options())}, 1);
  const std::int64_t begin = static_cast<std::int64_t>(chunk()) * s;
  cond.token_offset = begin;  // per-token timesteps (TI2V): this chunk's rows of the conditioning
  torch::Tensor local = h.narrow(1, begin, s).contiguous();
  auto [cos, sin] = model.rope().for_tokens(grid, begin, s, device);
  const SelfAttentionFn attend_fn = [this, L](const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
    return attend(q, k, v, L);
  };
  local = model.run_blocks(local, cond, cos, sin, attend_fn);
  const torch::Tensor out = model.head_forward(local, cond);  // [1, s, patch * out_dim]
  const torch::Tensor full = sp_.all_gather(out, 1);          // [1, s * P, ...] in token order
  return model.unpatchify(full.squeeze(0), grid);
}

}  // namespace wan
