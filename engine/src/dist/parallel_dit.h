// The DiT side of one sampling step across a world of ranks: CFG parallel (cond on one half of the
// world, uncond on the other, exchanged after each forward) times sequence parallel (Ulysses x Ring)
// inside each half. Every rank ends each step with the same guided velocity, so the sampler runs
// redundantly and identically everywhere, as in the official multi-GPU code.
#pragma once
#include <memory>

#include "dist/communicator.h"
#include "dist/sequence_parallel.h"
#include "wan/dist_config.h"

namespace wan {

class ParallelDit {
 public:
  // Every rank of `world` calls this together with the same (validated) config.
  ParallelDit(Communicator& world, const DistConfig& config);

  // uncond + g * (cond - uncond) for the latent at timestep t, identical on every rank. clip_fea and y:
  // image-to-video's conditioning (both branches), undefined for text-to-video.
  torch::Tensor guided_velocity(WanModelImpl& model, const torch::Tensor& latent, const TokenTimesteps& t,
                                const torch::Tensor& context, const torch::Tensor& context_null, double guidance,
                                const torch::Tensor& clip_fea = {}, const torch::Tensor& y = {});

  const RankLayout& layout() const { return layout_; }
  // Communicators in use (for accounting): the sequence-parallel group, its ulysses and ring groups,
  // and the cfg pair (null when not used).
  std::vector<Communicator*> communicators();

 private:
  torch::Tensor forward(WanModelImpl& model, const torch::Tensor& latent, const TokenTimesteps& t,
                        const torch::Tensor& context, const torch::Tensor& clip_fea, const torch::Tensor& y);
  RankLayout layout_;
  bool cfg_parallel_ = false;
  std::unique_ptr<Communicator> sp_comm_, cfg_comm_;
  std::unique_ptr<SequenceParallel> sp_;
};

}  // namespace wan
