// The distributed settings of a run: every field of the Wan2.1 distributed config that users of the
// Python extension know (world_size, backend, FSDP, context parallel, dtypes, ...), plus cfg_parallel.
// Plain data, JSON in and out, and validation that reports each problem next to its field, so the CLI
// and the studio (which must not see torch) share one set of rules and messages.
#pragma once
#include <string>
#include <vector>

#include "wan/types.h"

namespace wan {

enum class ShardingStrategy { kFullShard, kShardGradOp, kNoShard };

// The c10d backend of the ranks: NCCL moves GPU tensors, gloo CPU tensors.
enum class Backend { kNccl, kGloo };
const char* backend_name(Backend backend);       // "nccl", "gloo"
Backend parse_backend(const std::string& name);  // throws wan::Error(kInvalidArgument) naming the choices

// How attention computes (engine/src/model/layers.h attention()):
//   kSdpa: LibTorch's scaled_dot_product_attention (flash / memory-efficient / cuDNN on CUDA, the fused
//          flash-style kernel on the CPU); kMath: the reference (bounded query chunks, float32 softmax).
enum class AttentionMode { kSdpa, kMath };
const char* attention_mode_name(AttentionMode mode);          // "sdpa", "math"
AttentionMode parse_attention_mode(const std::string& name);  // throws wan::Error(kInvalidArgument)

struct DistConfig {
  int world_size = 1;
  int rank = 0;                      // informational in files; the launcher assigns ranks
  Backend backend = Backend::kNccl;  // CPU ranks use gloo whatever this says (resolve_backend)
  bool use_fsdp = false;             // shorthand: sets dit_fsdp and t5_fsdp when those are not given
  bool dit_fsdp = false;
  bool t5_fsdp = false;
  ShardingStrategy sharding_strategy = ShardingStrategy::kFullShard;
  bool use_context_parallel = false;  // sequence parallel (Ulysses x Ring)
  int ulysses_size = 1;
  int ring_size = 1;
  bool use_usp = false;       // xDiT's name for the same context parallel; either enables it
  bool cfg_parallel = false;  // cond and uncond on the two halves of the world
  bool t5_cpu = false;        // umT5 runs on the CPU whatever the request's device (the one owner of this placement)
  // Wan2.2 A14B with unsharded experts on a GPU: the expert not running waits in pinned host memory and is
  // copied to the GPU at the boundary, where the one that ran is freed (the timesteps only fall, so
  // there is one switch): one expert's weights on the GPU instead of two (the official code's
  // offload_model does the same through .to()). No effect on the CPU; refused with dit_fsdp (sharded
  // experts both stay sharded).
  bool idle_expert_on_host = false;
  // FSDP's MixedPrecision (never Dtype::kAuto); JSON names bfloat16 | float16 | float32 (or bf16, ...).
  Dtype param_dtype = Dtype::kBFloat16;
  Dtype reduce_dtype = Dtype::kFloat32;
  Dtype buffer_dtype = Dtype::kFloat32;
  bool sync_module_states = true;  // rank 0 reads the checkpoint and broadcasts
  AttentionMode attention_mode = AttentionMode::kSdpa;
  // Seconds one collective may wait for its peers before it fails (c10d's process-group timeout, as
  // init_process_group(timeout=...)). 600: c10d's default for gloo is 30 min; 10 min still spans a
  // 14B checkpoint loaded by rank 0 while the others wait in the broadcast.
  int collective_timeout_seconds = 600;
  // Seconds a rank may make no progress (no sampling step, no decoded frame, no loaded tensor, no collective
  // started or finished) before the watchdog declares it hung and ends the run. Must be shorter than the
  // collective timeout so the hung rank is named, not its waiting peers.
  int hang_timeout_seconds = 300;

  bool context_parallel() const { return use_context_parallel || use_usp; }
  int sequence_parallel_size() const { return context_parallel() ? ulysses_size * ring_size : 1; }
  int cfg_size() const { return cfg_parallel ? 2 : 1; }
};

const char* sharding_strategy_name(ShardingStrategy s);  // "FULL_SHARD", ...

// The backend ranks on `device` ("cpu", "cuda", "cuda:N") use: gloo on the CPU (NCCL moves GPU
// tensors only; a GPU preset run on a machine without GPUs), the config's backend on a GPU. The one
// place this rule lives.
Backend resolve_backend(const DistConfig& config, const Device& device);

// Reads the fields present in `json_text` on top of `base` (a preset may set only some fields). Accepts
// the dtype short forms bf16/fp16/fp32. Unknown fields, wrong types and unknown values throw
// wan::Error(kInvalidArgument) naming the field and what is allowed.
DistConfig dist_config_from_json(const std::string& json_text, const DistConfig& base = DistConfig{});
DistConfig load_dist_config(const std::string& path, const DistConfig& base = DistConfig{});
std::string dist_config_to_json(const DistConfig& config);  // every field, pretty-printed

// What the machine and model offer; unknown values are not checked.
struct DistEnvironment {
  int cuda_devices = -1;  // -1: unknown
  int num_heads = 0;      // DiT heads; 0: unknown
};

struct ConfigProblem {
  std::string field;    // the JSON field the message belongs next to
  std::string message;  // complete sentence: the problem and what to do
};

// Every problem of the configuration (empty when it is valid).
std::vector<ConfigProblem> validate_dist_config(const DistConfig& config, const DistEnvironment& env);
// Throws wan::Error(kInvalidArgument) with the first problem (or kUnsupported for missing hardware).
void check_dist_config(const DistConfig& config, const DistEnvironment& env);

// Where a rank sits in the world. Ranks are laid out as cfg half (slowest), then ring, then ulysses
// (fastest): consecutive ranks form a ulysses group, ring groups are strided by ulysses_size, and the
// sequence chunk a rank holds is ring_index * ulysses_size + ulysses_index, so rank order within a cfg
// half is global token order. Without context parallel every rank of a half holds the whole sequence.
struct RankLayout {
  int rank = 0;
  int cfg_index = 0;  // 0: conditional, 1: unconditional (cfg_parallel only)
  int ring_index = 0;
  int ulysses_index = 0;
  int sequence_chunk = 0;                             // 0 .. sequence_parallel_size - 1
  int replica_index = 0;                              // ranks that compute the same thing without context parallel
  int ulysses_size = 1, ring_size = 1, cfg_size = 1;  // the layout's sizes (1 where not in use)

  // Group membership, as world ranks in group order (the one place it is computed):
  std::vector<int> sequence_group() const;  // this rank's cfg half: its sequence chunks in order
  std::vector<int> cfg_pair() const;        // {cond, uncond} ranks holding this chunk; empty without cfg_parallel
  std::vector<int> ulysses_group() const;   // consecutive ranks that split the heads (all-to-all)
  std::vector<int> ring_group() const;      // ranks strided by ulysses_size that pass K/V around (ring attention)
};
RankLayout rank_layout(const DistConfig& config, int rank);

}  // namespace wan
