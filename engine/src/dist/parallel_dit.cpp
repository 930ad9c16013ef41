#include "dist/parallel_dit.h"

#include "wan/error.h"

namespace wan {

ParallelDit::ParallelDit(Communicator& world, const DistConfig& config) : cfg_parallel_(config.cfg_parallel) {
  if (config.world_size != world.size())
    throw Error(ErrorCode::kInternal, "ParallelDit: config world_size " + std::to_string(config.world_size) +
                                          " but the communicator has " + std::to_string(world.size()) + " ranks");
  layout_ = rank_layout(config, world.rank());
  sp_comm_ = world.split(layout_.sequence_group(),
                         "sp" + std::to_string(layout_.replica_index) + "_" + std::to_string(layout_.cfg_index));
  sp_ = std::make_unique<SequenceParallel>(*sp_comm_, layout_.ulysses_size, layout_.ring_size);
  if (cfg_parallel_)  // the rank holding the same chunk in the other half: cond is cfg index 0, uncond 1
    cfg_comm_ = world.split(layout_.cfg_pair(), "cfg" + std::to_string(layout_.replica_index) + "_" +
                                                    std::to_string(layout_.sequence_chunk));
}

std::vector<Communicator*> ParallelDit::communicators() {
  std::vector<Communicator*> out = {sp_comm_.get(), &sp_->ulysses(), &sp_->ring()};
  if (cfg_comm_) out.push_back(cfg_comm_.get());
  return out;
}

torch::Tensor ParallelDit::forward(WanModelImpl& model, const torch::Tensor& latent, const TokenTimesteps& t,
                                   const torch::Tensor& context, const torch::Tensor& clip_fea,
                                   const torch::Tensor& y) {
  if (sp_->size() == 1) return model.forward(latent, t, context, clip_fea, y);
  return sp_->dit_forward(model, latent, t, context, clip_fea, y);
}

torch::Tensor ParallelDit::guided_velocity(WanModelImpl& model, const torch::Tensor& latent, const TokenTimesteps& t,
                                           const torch::Tensor& context, const torch::Tensor& context_null,
                                           double guidance, const torch::Tensor& clip_fea, const torch::Tensor& y) {
  // Guidance 1: uncond + 1 (cond - uncond) is the conditional prediction; it is returned as computed
  // (bit for bit), without the unconditional forward. With CFG parallel the other half still runs its
  // forward (sharded weights gather across the whole world, so every rank keeps the same collectives;
  // make_plan refuses CFG parallel when every guidance is 1).
  const bool conditional_only = guidance == 1.0;
  torch::Tensor cond, uncond;
  if (cfg_parallel_) {
    const torch::Tensor mine = forward(model, latent, t, layout_.cfg_index == 0 ? context : context_null, clip_fea, y);
    const torch::Tensor both = cfg_comm_->all_gather(mine.unsqueeze(0), 0);  // [2, ...]: cond, uncond
    cond = both[0];
    uncond = both[1];
  } else {
    cond = forward(model, latent, t, context, clip_fea, y);
    if (!conditional_only) uncond = forward(model, latent, t, context_null, clip_fea, y);
  }
  if (model.residency) model.residency->end_step();
  if (conditional_only) return cond;
  return uncond + guidance * (cond - uncond);
}

}  // namespace wan
