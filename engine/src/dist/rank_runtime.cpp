#include "dist/rank_runtime.h"

#include "wan/error.h"

namespace wan {

ShardOptions shard_options(const DistConfig& config) {
  ShardOptions o;
  o.strategy = config.sharding_strategy;
  o.sync_module_states = config.sync_module_states;
  o.source_rank = 0;
  o.prefetch = true;
  return o;
}

Dtype effective_dtype(const DistConfig& config, Dtype requested, bool cpu) {
  if (requested != Dtype::kAuto || cpu || !(config.dit_fsdp || config.t5_fsdp)) return requested;
  return config.param_dtype;
}

RankRuntime::RankRuntime(Communicator& world, const DistConfig& config) : config_(config), world_(&world) {
  std::vector<int> all(world.size());
  for (int r = 0; r < world.size(); ++r) all[r] = r;
  if (config.dit_fsdp) dit_comm_ = world.split(all, "fsdp_dit");
  if (config.t5_fsdp) t5_comm_ = world.split(all, "fsdp_t5");
  parallel_ = std::make_unique<ParallelDit>(world, config);
}

RankHooks RankRuntime::hooks(bool output_rank) {
  RankHooks h;
  h.output_rank = output_rank;
  const ShardOptions options = shard_options(config_);
  if (dit_comm_) {
    Communicator* comm = dit_comm_.get();
    h.dit_sharding = [this, comm, options](torch::nn::Module& module, std::int64_t blocks, const TensorSource& source,
                                           const std::string& what,
                                           torch::Device device) -> std::shared_ptr<ParameterResidency> {
      auto shards = std::make_shared<ShardedParameters>(module, blocks, *comm, options, &source, what, device);
      dit_shards_ = shards;
      return shards;
    };
  }
  if (t5_comm_) h.t5_sharding = make_sharding_loader(*t5_comm_, options);
  h.make_velocity = [this](WanModel& dit, const TextContexts& text, const ImageContext& image,
                           double guidance) -> VelocityFn {
    WanModel model = dit;
    if (world_->size() > 1) {
      // The step cache's decision, agreed by every rank (model/step_cache.h StepCache::agree).
      Communicator* world = world_;
      const torch::Device device = dit->placement().device;
      dit->all_ranks_agree = [world, device](bool mine) {
        torch::Tensor votes = torch::full({1}, mine ? 1.0f : 0.0f, torch::dtype(torch::kFloat32).device(device));
        world->all_reduce_sum(votes);
        return votes.item<float>() == static_cast<float>(world->size());
      };
    }
    const torch::Tensor context = text.context, context_null = text.context_null;
    const torch::Tensor clip_fea = image.clip_fea, y = image.y;
    return [this, guidance, model, context, context_null, clip_fea, y](const torch::Tensor& latent,
                                                                       const TokenTimesteps& t) mutable {
      return parallel_->guided_velocity(*model, latent, t, context, context_null, guidance, clip_fea, y);
    };
  };
  return h;
}

}  // namespace wan
