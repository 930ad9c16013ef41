#include "wan/dist_config.h"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>

#include "core/json_number.h"
#include "wan/error.h"
#include "weights/file_util.h"

namespace wan {
namespace {

using nlohmann::json;

Error invalid(const std::string& message) { return Error(ErrorCode::kInvalidArgument, message); }

const std::vector<std::string> kFields = {"world_size",
                                          "rank",
                                          "backend",
                                          "use_fsdp",
                                          "dit_fsdp",
                                          "t5_fsdp",
                                          "sharding_strategy",
                                          "use_context_parallel",
                                          "ulysses_size",
                                          "ring_size",
                                          "use_usp",
                                          "cfg_parallel",
                                          "t5_cpu",
                                          "idle_expert_on_host",
                                          "param_dtype",
                                          "reduce_dtype",
                                          "buffer_dtype",
                                          "sync_module_states",
                                          "attention_mode",
                                          "collective_timeout_seconds",
                                          "hang_timeout_seconds"};

std::string join(const std::vector<std::string>& items, const char* sep = ", ") {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : sep) + s;
  return out;
}

bool get_bool(const json& j, const std::string& key) {
  const json& v = j.at(key);
  if (!v.is_boolean()) throw invalid("config field " + key + ": expected true or false, got " + v.dump());
  return v.get<bool>();
}

int get_int(const json& j, const std::string& key) {
  const json& v = j.at(key);
  if (!v.is_number_integer()) throw invalid("config field " + key + ": expected a whole number, got " + v.dump());
  const std::optional<int> value = json_integer<int>(v);  // beyond int's range: an error, never wrapped
  if (!value) throw invalid("config field " + key + ": " + v.dump() + " is out of range");
  return *value;
}

std::string get_choice(const json& j, const std::string& key, const std::map<std::string, std::string>& choices,
                       const std::string& allowed) {
  const json& v = j.at(key);
  if (!v.is_string()) throw invalid("config field " + key + ": expected one of " + allowed + ", got " + v.dump());
  std::string s = v.get<std::string>();
  const auto it = choices.find(s);
  if (it == choices.end()) throw invalid("config field " + key + ": '" + s + "' is not one of " + allowed);
  return it->second;
}

const std::map<std::string, std::string> kDtypes = {
    {"bfloat16", "bfloat16"}, {"bf16", "bfloat16"},   {"float16", "float16"}, {"fp16", "float16"},
    {"half", "float16"},      {"float32", "float32"}, {"fp32", "float32"},    {"float", "float32"}};
const char* kDtypeNames = "bfloat16, float16, float32";

}  // namespace

const char* sharding_strategy_name(ShardingStrategy s) {
  switch (s) {
    case ShardingStrategy::kFullShard:
      return "FULL_SHARD";
    case ShardingStrategy::kShardGradOp:
      return "SHARD_GRAD_OP";
    case ShardingStrategy::kNoShard:
      return "NO_SHARD";
  }
  return "?";
}

DistConfig dist_config_from_json(const std::string& json_text, const DistConfig& base) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number beyond a double
    throw invalid(std::string("distributed config is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) throw invalid("distributed config must be a JSON object of fields");
  for (const auto& item : j.items())
    if (std::find(kFields.begin(), kFields.end(), item.key()) == kFields.end())
      throw invalid("unknown config field '" + item.key() + "' (known: " + join(kFields) + ")");
  DistConfig c = base;
  if (j.contains("world_size")) c.world_size = get_int(j, "world_size");
  if (j.contains("rank")) c.rank = get_int(j, "rank");
  if (j.contains("backend"))
    c.backend = parse_backend(get_choice(j, "backend", {{"nccl", "nccl"}, {"gloo", "gloo"}}, "nccl, gloo"));
  if (j.contains("use_fsdp")) {
    c.use_fsdp = get_bool(j, "use_fsdp");
    if (!j.contains("dit_fsdp")) c.dit_fsdp = c.use_fsdp;
    if (!j.contains("t5_fsdp")) c.t5_fsdp = c.use_fsdp && !(j.contains("t5_cpu") ? get_bool(j, "t5_cpu") : c.t5_cpu);
  }
  if (j.contains("dit_fsdp")) c.dit_fsdp = get_bool(j, "dit_fsdp");
  if (j.contains("t5_fsdp")) c.t5_fsdp = get_bool(j, "t5_fsdp");
  c.use_fsdp = c.dit_fsdp || c.t5_fsdp;
  if (j.contains("sharding_strategy")) {
    const std::string s =
        get_choice(j, "sharding_strategy",
                   {{"FULL_SHARD", "FULL_SHARD"}, {"SHARD_GRAD_OP", "SHARD_GRAD_OP"}, {"NO_SHARD", "NO_SHARD"}},
                   "FULL_SHARD, SHARD_GRAD_OP, NO_SHARD");
    c.sharding_strategy = s == "FULL_SHARD"      ? ShardingStrategy::kFullShard
                          : s == "SHARD_GRAD_OP" ? ShardingStrategy::kShardGradOp
                                                 : ShardingStrategy::kNoShard;
  }
  if (j.contains("use_context_parallel")) c.use_context_parallel = get_bool(j, "use_context_parallel");
  if (j.contains("ulysses_size")) c.ulysses_size = get_int(j, "ulysses_size");
  if (j.contains("ring_size")) c.ring_size = get_int(j, "ring_size");
  if (j.contains("use_usp")) c.use_usp = get_bool(j, "use_usp");
  if (j.contains("cfg_parallel")) c.cfg_parallel = get_bool(j, "cfg_parallel");
  if (j.contains("t5_cpu")) c.t5_cpu = get_bool(j, "t5_cpu");
  if (j.contains("idle_expert_on_host")) c.idle_expert_on_host = get_bool(j, "idle_expert_on_host");
  if (j.contains("param_dtype")) c.param_dtype = parse_dtype_name(get_choice(j, "param_dtype", kDtypes, kDtypeNames));
  if (j.contains("reduce_dtype"))
    c.reduce_dtype = parse_dtype_name(get_choice(j, "reduce_dtype", kDtypes, kDtypeNames));
  if (j.contains("buffer_dtype"))
    c.buffer_dtype = parse_dtype_name(get_choice(j, "buffer_dtype", kDtypes, kDtypeNames));
  if (j.contains("sync_module_states")) c.sync_module_states = get_bool(j, "sync_module_states");
  if (j.contains("attention_mode"))
    c.attention_mode =
        parse_attention_mode(get_choice(j, "attention_mode", {{"sdpa", "sdpa"}, {"math", "math"}},
                                        "sdpa (fused kernels where LibTorch has them), math (reference)"));
  if (j.contains("collective_timeout_seconds")) c.collective_timeout_seconds = get_int(j, "collective_timeout_seconds");
  if (j.contains("hang_timeout_seconds")) c.hang_timeout_seconds = get_int(j, "hang_timeout_seconds");
  return c;
}

Backend resolve_backend(const DistConfig& config, const Device& device) {
  return device.is_cpu() ? Backend::kGloo : config.backend;
}

const char* backend_name(Backend backend) { return backend == Backend::kGloo ? "gloo" : "nccl"; }

Backend parse_backend(const std::string& name) {
  if (name == "nccl") return Backend::kNccl;
  if (name == "gloo") return Backend::kGloo;
  throw invalid("backend '" + name + "' is unknown; use nccl (GPU ranks) or gloo (CPU ranks)");
}

const char* attention_mode_name(AttentionMode mode) { return mode == AttentionMode::kMath ? "math" : "sdpa"; }

AttentionMode parse_attention_mode(const std::string& name) {
  if (name == "sdpa") return AttentionMode::kSdpa;
  if (name == "math") return AttentionMode::kMath;
  throw invalid("attention mode '" + name + "' is unknown; use sdpa (fused kernels) or math (reference)");
}

DistConfig load_dist_config(const std::string& path, const DistConfig& base) {
  const std::string text = read_text_file(path);  // throws kFileNotFound / kIo with the path
  try {
    return dist_config_from_json(text, base);
  } catch (const Error& e) {
    throw Error(e.code(), path + ": " + e.what());
  }
}

std::string dist_config_to_json(const DistConfig& c) {
  json j = {{"world_size", c.world_size},
            {"rank", c.rank},
            {"backend", backend_name(c.backend)},
            {"use_fsdp", c.use_fsdp},
            {"dit_fsdp", c.dit_fsdp},
            {"t5_fsdp", c.t5_fsdp},
            {"sharding_strategy", sharding_strategy_name(c.sharding_strategy)},
            {"use_context_parallel", c.use_context_parallel},
            {"ulysses_size", c.ulysses_size},
            {"ring_size", c.ring_size},
            {"use_usp", c.use_usp},
            {"cfg_parallel", c.cfg_parallel},
            {"t5_cpu", c.t5_cpu},
            {"idle_expert_on_host", c.idle_expert_on_host},
            {"param_dtype", dtype_long_name(c.param_dtype)},
            {"reduce_dtype", dtype_long_name(c.reduce_dtype)},
            {"buffer_dtype", dtype_long_name(c.buffer_dtype)},
            {"sync_module_states", c.sync_module_states},
            {"attention_mode", attention_mode_name(c.attention_mode)},
            {"collective_timeout_seconds", c.collective_timeout_seconds},
            {"hang_timeout_seconds", c.hang_timeout_seconds}};
  return j.dump(2) + "\n";
}

std::vector<ConfigProblem> validate_dist_config(const DistConfig& c, const DistEnvironment& env) {
  std::vector<ConfigProblem> out;
  auto add = [&](const std::string& field, const std::string& message) { out.push_back({field, message}); };
  const std::string ws = std::to_string(c.world_size);
  if (c.world_size < 1) add("world_size", "world_size must be at least 1 (got " + ws + ")");
  if (c.rank < 0 || (c.world_size >= 1 && c.rank >= c.world_size))
    add("rank", "rank " + std::to_string(c.rank) +
                    " is out of range: ranks run from 0 to world_size - 1 = " + std::to_string(c.world_size - 1));
  if (c.backend == Backend::kNccl && env.cuda_devices == 0)
    add("backend",
        "backend nccl needs CUDA GPUs and none was found; run the ranks on the CPU (--device cpu, which uses "
        "gloo)");
  else if (c.backend == Backend::kNccl && env.cuda_devices > 0 && c.world_size > env.cuda_devices)
    add("world_size", "Not enough GPUs available: found " + std::to_string(env.cuda_devices) + ", asked for " + ws +
                          "; lower world_size to " + std::to_string(env.cuda_devices) + " or fewer");
  if (c.ulysses_size < 1) add("ulysses_size", "ulysses_size must be at least 1");
  if (c.ring_size < 1) add("ring_size", "ring_size must be at least 1");
  if (c.ulysses_size >= 1 && c.ring_size >= 1 && c.world_size >= 1) {
    if (!c.context_parallel() && (c.ulysses_size > 1 || c.ring_size > 1))
      add("use_context_parallel",
          "ulysses_size and ring_size take effect only with use_context_parallel: turn it on, "
          "or set both sizes to 1");
    const int product = c.sequence_parallel_size() * c.cfg_size();
    if ((c.context_parallel() || c.cfg_parallel) && product != c.world_size) {
      std::string lhs = c.context_parallel()
                            ? "ulysses_size x ring_size" + std::string(c.cfg_parallel ? " x 2 (cfg_parallel)" : "") +
                                  " = " + std::to_string(c.ulysses_size) + " x " + std::to_string(c.ring_size) +
                                  (c.cfg_parallel ? " x 2" : "") + " = " + std::to_string(product)
                            : "cfg_parallel without context parallel uses 2 ranks";
      add(c.context_parallel() ? "ulysses_size" : "cfg_parallel",
          lhs + ", but world_size is " + ws + "; they must be equal");
    }
    if (c.context_parallel() && env.num_heads > 0 && env.num_heads % c.ulysses_size != 0) {
      std::vector<std::string> divisors;
      for (int d = 1; d <= env.num_heads; ++d)
        if (env.num_heads % d == 0) divisors.push_back(std::to_string(d));
      add("ulysses_size", "the model has " + std::to_string(env.num_heads) +
                              " attention heads, not divisible by ulysses_size " + std::to_string(c.ulysses_size) +
                              "; use one of " + join(divisors) + " and put the rest of the world in ring_size");
    }
  }
  if (c.world_size == 1 && c.use_fsdp)
    add("use_fsdp",
        "FSDP (use_fsdp, dit_fsdp, t5_fsdp) shards weights across ranks and needs world_size > 1: give the "
        "world a size (--world-size N, or a preset with one before this config) or turn sharding off");
  if (c.collective_timeout_seconds < 1)
    add("collective_timeout_seconds",
        "collective_timeout_seconds must be at least 1 (got " + std::to_string(c.collective_timeout_seconds) + ")");
  if (c.hang_timeout_seconds < 1)
    add("hang_timeout_seconds",
        "hang_timeout_seconds must be at least 1 (got " + std::to_string(c.hang_timeout_seconds) + ")");
  if (c.t5_fsdp && c.t5_cpu)
    add("t5_fsdp", "t5_fsdp and t5_cpu exclude each other (a T5 on the CPU is not sharded); turn one off");
  if (c.idle_expert_on_host && c.dit_fsdp)
    add("idle_expert_on_host",
        "idle_expert_on_host is for unsharded Wan2.2 experts; with dit_fsdp both experts stay sharded across the "
        "ranks: turn one off");
  return out;
}

void check_dist_config(const DistConfig& config, const DistEnvironment& env) {
  const auto problems = validate_dist_config(config, env);
  if (problems.empty()) return;
  const ConfigProblem& p = problems.front();
  const bool hardware = p.message.rfind("Not enough GPUs", 0) == 0 || p.message.rfind("backend nccl needs", 0) == 0;
  throw Error(hardware ? ErrorCode::kUnsupported : ErrorCode::kInvalidArgument, p.message);
}

RankLayout rank_layout(const DistConfig& c, int rank) {
  if (rank < 0 || rank >= c.world_size)
    throw invalid("rank " + std::to_string(rank) + " is out of range for world_size " + std::to_string(c.world_size));
  const int sp = c.sequence_parallel_size();
  const int group = sp * c.cfg_size();
  RankLayout r;
  r.rank = rank;
  r.replica_index = rank / group;
  const int within = rank % group;
  r.cfg_index = within / sp;
  r.sequence_chunk = within % sp;
  r.ulysses_size = c.context_parallel() ? c.ulysses_size : 1;
  r.ring_size = c.context_parallel() ? c.ring_size : 1;
  r.cfg_size = c.cfg_size();
  r.ring_index = r.sequence_chunk / r.ulysses_size;
  r.ulysses_index = r.sequence_chunk % r.ulysses_size;
  return r;
}

std::vector<int> RankLayout::sequence_group() const {
  const int sp = ulysses_size * ring_size;
  const int base = (replica_index * cfg_size + cfg_index) * sp;
  std::vector<int> out;
  for (int c = 0; c < sp; ++c) out.push_back(base + c);
  return out;
}

std::vector<int> RankLayout::cfg_pair() const {
  if (cfg_size == 1) return {};
  const int sp = ulysses_size * ring_size;
  const int base = replica_index * cfg_size * sp;
  return {base + sequence_chunk, base + sp + sequence_chunk};
}

std::vector<int> RankLayout::ulysses_group() const {
  const int first = sequence_group().front() + ring_index * ulysses_size;
  std::vector<int> out;
  for (int i = 0; i < ulysses_size; ++i) out.push_back(first + i);
  return out;
}

std::vector<int> RankLayout::ring_group() const {
  const int first = sequence_group().front() + ulysses_index;
  std::vector<int> out;
  for (int j = 0; j < ring_size; ++j) out.push_back(first + j * ulysses_size);
  return out;
}

}  // namespace wan
