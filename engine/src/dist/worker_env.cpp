#include "wan/worker_env.h"

#include <cstdlib>

#include "wan/error.h"

extern char** environ;

namespace wan {
namespace {

const std::string* find(const std::map<std::string, std::string>& env, const char* key) {
  const auto it = env.find(key);
  return it == env.end() || it->second.empty() ? nullptr : &it->second;
}

int number(const std::map<std::string, std::string>& env, const char* key, int fallback) {
  const std::string* v = find(env, key);
  if (!v) return fallback;
  try {
    std::size_t end = 0;
    const int n = std::stoi(*v, &end);
    if (end != v->size()) throw std::invalid_argument("trailing");
    return n;
  } catch (const std::exception&) {
    throw Error(ErrorCode::kInvalidArgument,
                std::string("environment variable ") + key + "='" + *v + "' is not a whole number");
  }
}

}  // namespace

WorkerEnv worker_env_from(const std::map<std::string, std::string>& env) {
  WorkerEnv w;
  const char *rank_key = "RANK", *size_key = "WORLD_SIZE", *local_key = "LOCAL_RANK";
  if (find(env, "RANK")) {
    w.launcher = find(env, "WAN_RUN_ID") ? "wan" : "torchrun";
  } else if (find(env, "SLURM_PROCID")) {
    w.launcher = "slurm";
    rank_key = "SLURM_PROCID";
    size_key = "SLURM_NTASKS";
    local_key = "SLURM_LOCALID";
  } else if (find(env, "OMPI_COMM_WORLD_RANK")) {
    w.launcher = "mpirun";
    rank_key = "OMPI_COMM_WORLD_RANK";
    size_key = "OMPI_COMM_WORLD_SIZE";
    local_key = "OMPI_COMM_WORLD_LOCAL_RANK";
  } else {
    w.launcher = "none";
  }
  w.rank = number(env, rank_key, 0);
  w.world_size = number(env, size_key, 1);
  w.local_rank = number(env, local_key, 0);
  if (w.world_size < 1)
    throw Error(ErrorCode::kInvalidArgument,
                std::string(size_key) + "=" + std::to_string(w.world_size) + ": must be at least 1");
  if (w.rank < 0 || w.rank >= w.world_size)
    throw Error(ErrorCode::kInvalidArgument, std::string(rank_key) + "=" + std::to_string(w.rank) +
                                                 " is out of range for " + size_key + "=" +
                                                 std::to_string(w.world_size));
  if (w.local_rank < 0) throw Error(ErrorCode::kInvalidArgument, std::string(local_key) + " must not be negative");
  if (const std::string* addr = find(env, "MASTER_ADDR"))
    w.master_addr = *addr;
  else if (w.launcher == "slurm" || w.launcher == "mpirun") {
    if (w.world_size > 1 && !find(env, "WAN_SINGLE_NODE"))
      throw Error(ErrorCode::kInvalidArgument,
                  "MASTER_ADDR is not set: under " + w.launcher +
                      " export MASTER_ADDR (the host of rank 0) and MASTER_PORT before launching");
  }
  w.master_port = number(env, "MASTER_PORT", 29500);
  if (w.master_port < 1 || w.master_port > 65535)
    throw Error(ErrorCode::kInvalidArgument, "MASTER_PORT=" + std::to_string(w.master_port) + " is not a TCP port");
  w.store_hosted = find(env, "WAN_STORE_HOSTED") && *find(env, "WAN_STORE_HOSTED") == "1";
  if (const std::string* id = find(env, "WAN_RUN_ID")) w.run_id = *id;
  return w;
}

WorkerEnv worker_env_from_process() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    const std::string kv = *e;
    const auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return worker_env_from(env);
}

}  // namespace wan
