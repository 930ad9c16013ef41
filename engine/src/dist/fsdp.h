// FSDP-style inference sharding of a model's weights across the ranks of a communicator, as the
// official Wan2.1 shard_model does with torch FSDP: each block is one unit, the remaining parameters
// (embeddings, head, final norm) form the root unit. Each unit's parameters are flattened (one flat
// buffer per dtype, padded to a multiple of the world size) and every rank keeps 1/N of each buffer.
//
//   FULL_SHARD     a unit is all-gathered just before it runs (the next block's gather is started
//                  while the current one computes) and freed after it ran;
//   SHARD_GRAD_OP  gathered units stay until the end of the sampling step (both guidance forwards);
//   NO_SHARD       every rank holds every parameter (nothing to gather).
//
// Every rank runs the same units in the same order (true for every layout of ParallelDit), which is
// what makes the per-unit all-gathers line up.
#pragma once
#include <torch/nn/module.h>

#include <memory>
#include <string>
#include <vector>

#include "dist/communicator.h"
#include "model/model_files.h"
#include "model/residency.h"
#include "wan/dist_config.h"
#include "weights/tensor_source.h"

namespace wan {

struct ShardOptions {
  ShardingStrategy strategy = ShardingStrategy::kFullShard;
  // Only source_rank reads the checkpoint; each unit is broadcast from it (the file is read once).
  // Otherwise every rank reads only the byte ranges of its own shards.
  bool sync_module_states = true;
  int source_rank = 0;
  bool prefetch = true;  // start the next block's gather before the current block computes
};

// Parameter memory of one rank, measured from the tensors it holds (bytes).
struct ShardMemory {
  std::int64_t model_bytes = 0;     // every parameter, unsharded
  std::int64_t resident_bytes = 0;  // held now: shards + gathered units + replicated parameters
  std::int64_t cached_bytes = 0;    // gather buffers kept for the next gathers (no parameters in them)
  std::int64_t peak_bytes = 0;      // the most held at once (resident + cached) since creation or reset_peak()
  std::int64_t shard_bytes = 0;     // the permanent shards alone (including padding)
};

class ShardedParameters : public ParameterResidency {
 public:
  // `module` was constructed with DeferredParameters (placeholders) or holds real values (source ==
  // nullptr: its own values are sharded, as the benchmark's random models are). Units are the
  // children "blocks.0" .. "blocks.<num_blocks - 1>"; parameters end up on `device`. With a source,
  // names and shapes are checked as load_strict does (`what` names the model in messages). Every rank
  // of `comm` calls this together.
  ShardedParameters(torch::nn::Module& module, std::int64_t num_blocks, Communicator& comm, const ShardOptions& options,
                    const TensorSource* source, const std::string& what, torch::Device device);
  ~ShardedParameters() override;

  void begin_forward() override;
  void end_forward() override;
  void before_block(int index) override;
  void after_block(int index) override;
  void end_step() override;

  ShardMemory memory() const;
  void reset_peak();
  Communicator& communicator() { return comm_; }
  int num_units() const { return static_cast<int>(units_.size()); }
  // Bytes one gather of every unit sends from this rank (for the analytic communication count).
  std::int64_t gather_bytes_per_pass() const;

  struct Unit;

 private:
  void start_gather(int unit);
  void make_present(int unit);
  void release(int unit);
  void note_memory();
  torch::Tensor take_buffer(std::int64_t numel, const torch::TensorOptions& options);
  Communicator& comm_;
  ShardOptions options_;
  std::vector<std::unique_ptr<Unit>> units_;  // [0] = root, [1 + i] = blocks.i
  std::int64_t model_bytes_ = 0, replicated_bytes_ = 0, peak_bytes_ = 0;
  // Gather buffers released by a unit, reused by the next gather of the same size (every block has the
  // same size). At most two per size are kept between forwards and steps, the running and the
  // prefetched block's, which the next forward needs at once anyway: allocating them afresh each forward
  // fragmented the CPU heap (measured: resident set 1.6x the live bytes on a FULL_SHARD rank).
  void trim_spares(std::size_t keep_per_size);
  std::vector<torch::Tensor> spare_;
};

// The loader that shards a model over `comm` as it loads (for load_dit / load_t5). `comm` must outlive
// the model.
ShardingLoader make_sharding_loader(Communicator& comm, const ShardOptions& options);

}  // namespace wan
