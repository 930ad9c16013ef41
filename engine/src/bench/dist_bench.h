// `wan bench --world-size N`: the communication accounting of a distributed layout. Runs the ranks as
// threads of this process over gloo (CPU) on a random-weight model and reports per rank the time of a
// sampling step split into compute and communication, and the bytes sent per step per collective kind
// next to the analytic count for the layout (Ulysses all-to-alls, ring K/V passes, output gathers,
// FSDP parameter gathers), and with dit_fsdp the DiT parameter memory each rank holds.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "bench/dit_bench.h"
#include "wan/dist_config.h"

namespace wan {

constexpr int kBenchCollectiveKinds = 6;  // all_gather, all_to_all, broadcast, all_reduce, send_recv, barrier

struct DistBenchRank {
  int rank = 0;
  double step_seconds = 0, comm_seconds = 0;
  std::array<double, kBenchCollectiveKinds> bytes_per_step{};
  // DiT parameter memory this rank holds (measured from its tensors): at rest between steps, and the
  // most at once during the timed steps. Without dit_fsdp both are the whole model.
  std::int64_t param_bytes_at_rest = 0, param_bytes_peak = 0;
};

struct DistBenchResult {
  std::string label;
  std::vector<DistBenchRank> ranks;
  std::array<double, kBenchCollectiveKinds> analytic_bytes_per_step{};  // per rank
  std::vector<std::string> kind_names;
  std::int64_t model_param_bytes = 0;  // the DiT's parameters, unsharded
};

DistBenchResult run_dist_bench(const BenchOptions& options, const DistConfig& config);

}  // namespace wan
