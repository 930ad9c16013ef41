// One rank of a distributed generation around wan::generate: the parallel DiT (USP x CFG parallel),
// the FSDP-style sharding of the DiT and of umT5, and the hooks that plug them into the pipeline. The
// worker executable and the tests use this same code.
#pragma once
#include <memory>

#include "dist/communicator.h"
#include "dist/fsdp.h"
#include "dist/parallel_dit.h"
#include "pipeline/rank_hooks.h"
#include "wan/dist_config.h"

namespace wan {

class RankRuntime {
 public:
  // Every rank of `world` calls this together with the same validated config (it splits `world`).
  RankRuntime(Communicator& world, const DistConfig& config);

  // Hooks for generate_with_hooks: sharded loading where the config asks for it, the parallel
  // velocity, the world recorded in the sidecar. The runtime must outlive the generation.
  RankHooks hooks(bool output_rank);

  ParallelDit& parallel() { return *parallel_; }
  const DistConfig& config() const { return config_; }
  // The sharding of the loaded DiT (null when not sharded, not loaded yet, or freed with the model: the
  // runtime does not keep the shards alive).
  std::shared_ptr<ShardedParameters> dit_shards() const { return dit_shards_.lock(); }

 private:
  DistConfig config_;
  Communicator* world_ = nullptr;  // the step cache's agreement (all ranks)
  std::unique_ptr<Communicator> dit_comm_, t5_comm_;
  std::unique_ptr<ParallelDit> parallel_;
  std::weak_ptr<ShardedParameters> dit_shards_;
};

ShardOptions shard_options(const DistConfig& config);

// The --dtype a distributed run uses when the user left it at "auto": on a GPU, FSDP's param_dtype
// when the DiT or T5 is sharded (as FSDP's MixedPrecision casts to it); otherwise "auto" (float32 on
// the CPU, where LibTorch's bfloat16 matmuls are far slower than float32).
Dtype effective_dtype(const DistConfig& config, Dtype requested, bool cpu);

}  // namespace wan
