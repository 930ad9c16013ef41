// Sequence parallel (USP: Ulysses x Ring) for the Wan DiT, as xDiT's xFuserLongContextAttention does
// it, but exact for any token count: tokens are split in contiguous chunks (padded up to a multiple of
// the group size), RoPE uses each chunk's global offset, padded tokens are masked as keys, and the head
// outputs are gathered for the sampler.
//
// Within one sequence-parallel group of size U*R, sp rank c holds chunk c; ulysses groups are
// consecutive sp ranks (c / U equal), ring groups strided ones (c % U equal).
#pragma once
#include <memory>

#include "dist/communicator.h"
#include "model/dit.h"

namespace wan {

class SequenceParallel {
 public:
  // sp: the communicator of the sequence-parallel group (its rank = the chunk index). Every member calls
  // this together (it splits sp into ulysses and ring groups).
  SequenceParallel(Communicator& sp, int ulysses_size, int ring_size);

  int size() const { return sp_.size(); }
  int chunk() const { return sp_.rank(); }

  // Attention of this rank's query chunk against all keys of the group. q, k, v: [1, s, n, d] local
  // chunks; keys at global positions >= valid_tokens are masked. Returns [1, s, n, d].
  torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                       std::int64_t valid_tokens);

  // The DiT forward with the blocks on this rank's chunk; every member returns the full
  // [out_dim, F, H, W] float32 result (identical to WanModel::forward).
  torch::Tensor dit_forward(WanModelImpl& model, const torch::Tensor& x, const TokenTimesteps& t,
                            const torch::Tensor& context, const torch::Tensor& clip_fea = {},
                            const torch::Tensor& y = {});

  Communicator& group() { return sp_; }
  Communicator& ulysses() { return *ulysses_; }
  Communicator& ring() { return *ring_; }

 private:
  torch::Tensor ring_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               std::int64_t valid_tokens);
  Communicator& sp_;
  int ulysses_size_, ring_size_;
  std::unique_ptr<Communicator> ulysses_, ring_;
};

// Attention of q [Lq, h, d] against one block of keys/values [Lk, h, d] whose first `valid_keys` are
// real; returns the block's output [Lq, h, d] (float32) and the natural log-sum-exp of its scaled scores
// [h, Lq] (float32) for merging. With attention_mode sdpa (layers.h) a fused kernel that returns the
// log-sum-exp computes it: LibTorch's flash-style CPU kernel, or on CUDA its flash kernel for bf16/fp16
// with head dim <= 256; otherwise (math, float32 on CUDA) query chunks of bounded score memory.
std::pair<torch::Tensor, torch::Tensor> attention_block_lse(const torch::Tensor& q, const torch::Tensor& k,
                                                            const torch::Tensor& v, std::int64_t valid_keys);

}  // namespace wan
