// `wan generate --world-size N ...`: runs one wan-worker per rank on this machine through the engine's
// launcher, with the distributed settings from --dist-config and/or flags, and shows each rank's
// progress from the shared-memory board.
#pragma once
#include <CLI/CLI.hpp>

#include "generate_command.h"
#include "wan/dist_config.h"

namespace wan_cli {

struct DistOptions {
  int world_size = 0;  // 0: not given
  std::string config_file, backend, sharding, run_id;
  int ulysses = 0, ring = 0, master_port = 0;
  bool cfg_parallel = false, dit_fsdp = false, t5_fsdp = false;
  bool any() const {
    return world_size > 0 || !config_file.empty() || ulysses > 0 || ring > 0 || cfg_parallel || dit_fsdp || t5_fsdp;
  }
};

void add_distributed_options(CLI::App* generate, DistOptions& options);
// --dist-config, then the flags over it; backend gloo by default on the CPU.
wan::DistConfig dist_config_from_options(const DistOptions& options, const std::string& device);
// generate_args: the command line after `generate`, as the user gave it (forwarded to the workers).
int run_distributed_generate(GenerateOptions& generate, const DistOptions& options, const std::vector<std::string>& generate_args);

}  // namespace wan_cli
