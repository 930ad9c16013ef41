// `wan bench --world-size N`: the communication accounting of a distributed layout. Runs the ranks as
// threads of this process over gloo (CPU) on a random-weight model and reports per rank the time of a
// sampling step split into compute and communication, and the bytes sent per step per collective kind
// next to the analytic count for the layout (Ulysses all-to-alls, ring K/V passes, output gathers).
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
};

struct DistBenchResult {
  std::string label;
  std::vector<DistBenchRank> ranks;
  std::array<double, kBenchCollectiveKinds> analytic_bytes_per_step{};  // per rank
  std::vector<std::string> kind_names;
};

DistBenchResult run_dist_bench(const BenchOptions& options, const DistConfig& config);

}  // namespace wan
