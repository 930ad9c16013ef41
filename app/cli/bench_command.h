// `wan bench`: DiT timings and memory for random-weight models of the released sizes.
#pragma once
#include <CLI/CLI.hpp>

#include "bench/dit_bench.h"

namespace wan_cli {

struct BenchCommandOptions {
  wan::BenchOptions base;
  std::vector<std::string> models{"1.3B"};
  std::vector<std::string> attention{"sdpa"};  // each model is timed with each attention mode
  std::string size;                            // W*H
  std::string json;                            // write the results here too
  int world_size = 0, ulysses = 0, ring = 0;   // --world-size: communication accounting of a layout
  bool cfg_parallel = false;
  bool dit_fsdp = false;
  std::string sharding = "FULL_SHARD";
  CLI::Option* guidance_option = nullptr;  // given or not (the distill sampler's default is 1)
};

CLI::App* add_bench_command(CLI::App& app, BenchCommandOptions& options);
int run_bench_command(BenchCommandOptions& options);

}  // namespace wan_cli
