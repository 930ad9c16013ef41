#include "generate_command.h"

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <vector>

#include "progress_printer.h"
#include "wan/error.h"
#include "wan/launcher.h"
#include "wan/rank.h"

namespace wan_cli {
namespace {

std::atomic<bool> g_interrupted{false};
extern "C" void on_interrupt(int) { g_interrupted = true; }

// One line per rank whenever its phase or step changes (the engine's formatter), and each rank's peak.
class BoardPrinter {
 public:
  void operator()(const wan::ProgressBoard& board) {
    const auto n = static_cast<std::size_t>(board.world_size());
    if (last_.size() != n) last_.assign(n, {-1, -1});
    if (peaks_.size() != n) peaks_.assign(n, 0);
    for (int r = 0; r < board.world_size(); ++r) {
      const wan::RankStatus s = board.read(r);
      peaks_[r] = std::max<std::uint64_t>(peaks_[r], s.peak_memory_bytes);
      if (s.phase == 0 || (last_[r].first == s.phase && last_[r].second == s.step)) continue;
      last_[r] = {s.phase, s.step};
      std::fprintf(stderr, "%s\n", wan::format_rank_status(r, s).c_str());
    }
  }
  // Peak memory each rank reported (resident set on the CPU, allocator peak on a GPU).
  void print_peaks() const {
    for (std::size_t r = 0; r < peaks_.size(); ++r)
      std::fprintf(stderr, "rank %zu: peak memory %.1f MiB\n", r, static_cast<double>(peaks_[r]) / (1 << 20));
  }

 private:
  std::vector<std::pair<int, int>> last_;
  std::vector<std::uint64_t> peaks_;
};

int run_launched(const wan::Job& job, const DistFlags& d) {
  wan::LaunchOptions l;
  l.master_port = d.master_port;
  l.cancel = &g_interrupted;
  BoardPrinter printer;
  l.on_poll = [&](const wan::ProgressBoard& b) { printer(b); };
  struct sigaction sa {
  }, old_int{}, old_term{};
  sa.sa_handler = on_interrupt;
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  const wan::DistConfig& c = job.config;
  std::fprintf(stderr, "starting %d workers (%s, ulysses %d x ring %d%s)\n", c.world_size, wan::backend_name(c.backend),
               c.context_parallel() ? c.ulysses_size : 1, c.context_parallel() ? c.ring_size : 1,
               c.cfg_parallel ? ", cfg parallel" : "");
  wan::LaunchResult r;
  try {
    r = wan::launch_job(job, l);
  } catch (...) {
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGTERM, &old_term, nullptr);
    throw;
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  if (r.exit_code != 0) throw wan::Error(static_cast<wan::ErrorCode>(r.exit_code), r.message);
  printer.print_peaks();
  return 0;
}

}  // namespace

int run_generate_command(const JobFlags& flags) {
  const wan::Job job = job_from_flags(flags);
  if (!flags.write_job.empty()) {
    wan::save_job(flags.write_job, job);
    std::printf("wrote %s: run it with `torchrun --nproc_per_node=%d wan-worker --job %s` (or srun, mpirun)\n",
                flags.write_job.c_str(), job.config.world_size, flags.write_job.c_str());
    return 0;
  }
  if (flags.dist.distributed()) return run_launched(job, flags.dist);
  ConsoleReporter console(stderr);
  wan::run_rank(job, wan::WorkerEnv{}, console);  // a world of one that nobody launched
  return 0;
}

}  // namespace wan_cli
