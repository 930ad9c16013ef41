#include "dist/watchdog.h"

#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <thread>
#include <tuple>

#include "core/progress_mark.h"
#include "wan/error.h"
#include "wan/generation.h"

namespace wan {
namespace {

constexpr auto kWatchPeriod = std::chrono::seconds(1);  // how often an unwatched worker looks at its own marks
// Inside a collective an unwatched worker waits this much past the collective timeout before it ends
// itself: c10d's own timeout should have failed the collective by then.
constexpr auto kCollectiveGrace = std::chrono::seconds(30);

}  // namespace

std::string describe_rank_activity(const RankStatus& s) {
  const Phase phase = static_cast<Phase>(s.phase);
  std::string text = "while " + std::string(phase == Phase::kNone ? "starting" : phase_name(phase));
  if (phase == Phase::kSampling || phase == Phase::kDecoding)
    text += " (step " + std::to_string(s.step) + " of " + std::to_string(s.total) + ")";
  // Collectives are counted over all kinds: "#57" is the rank's 57th collective of any kind.
  const std::string collective =
      std::string(collective_name(s.collective)) + " (collective #" + std::to_string(s.collectives) + ")";
  if (s.in_collective) return text + ", waiting in " + collective;
  if (s.collectives == 0) return text + ", before any collective";
  return text + ", outside any collective (the last: " + collective + ", finished)";
}

bool process_stopped(int pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  const auto paren = line.rfind(')');  // "pid (comm) S ...": comm may hold spaces and parentheses
  return paren != std::string::npos && paren + 2 < line.size() && (line[paren + 2] == 'T' || line[paren + 2] == 't');
}

HangVerdict judge_hang(const std::vector<WatchedRank>& ranks, std::uint64_t now_ms, std::chrono::seconds hang_timeout) {
  const std::uint64_t limit_ms = static_cast<std::uint64_t>(hang_timeout.count()) * 1000;
  auto idle_ms = [&](const WatchedRank& w) { return now_ms > w.last_progress_ms ? now_ms - w.last_progress_ms : 0; };
  int suspect = -1;
  bool all_stalled = true, any_running = false;
  // Order of suspicion: a stopped process, then a rank stalled outside any collective (the longest
  // idle), then, when every rank waits in a collective, the one that started the fewest collectives
  // (the others wait for it), the longest idle among equals.
  auto rank_of = [&](int r) {
    const WatchedRank& w = ranks[r];
    return std::make_tuple(w.stopped ? 0 : 1, w.status.in_collective ? 1 : 0, w.status.collectives, ~idle_ms(w));
  };
  for (int r = 0; r < static_cast<int>(ranks.size()); ++r) {
    const WatchedRank& w = ranks[r];
    if (!w.running) continue;
    any_running = true;
    const bool stalled = idle_ms(w) > limit_ms;
    all_stalled = all_stalled && stalled;
    if (!stalled) continue;
    if (suspect < 0 || rank_of(r) < rank_of(suspect)) suspect = r;
  }
  if (!any_running || suspect < 0) return {};
  const WatchedRank& s = ranks[suspect];
  if (!s.stopped && s.status.in_collective && !all_stalled) return {};  // waits for a peer that still works
  HangVerdict v;
  v.rank = suspect;
  v.message = "stopped responding: no progress for " + std::to_string(idle_ms(s) / 1000) + " s " +
              describe_rank_activity(s.status);
  if (s.stopped) v.message += " (its process is stopped by a signal)";
  for (int r = 0; r < static_cast<int>(ranks.size()); ++r)
    if (r != suspect && ranks[r].running && ranks[r].status.in_collective)
      v.message += "; rank " + std::to_string(r) + " waits in " + collective_name(ranks[r].status.collective) +
                   " (collective #" + std::to_string(ranks[r].status.collectives) + ")";
  return v;
}

struct ProcessWatchdog::State {
  std::mutex mutex;
  std::condition_variable wake;
  bool stop = false;
  std::thread thread;
};

ProcessWatchdog::ProcessWatchdog(int rank, std::chrono::seconds hang_timeout, std::chrono::seconds collective_timeout)
    : state_(std::make_unique<State>()) {
  note_progress();  // the watch starts now
  State* st = state_.get();
  st->thread = std::thread([st, rank, hang_timeout, collective_timeout] {
    std::unique_lock<std::mutex> lock(st->mutex);
    while (!st->wake.wait_for(lock, kWatchPeriod, [st] { return st->stop; })) {
      const ProcessProgress p = current_progress();
      const std::uint64_t now = ProgressBoard::monotonic_ms();
      const std::uint64_t idle_ms = now > p.mark.ms ? now - p.mark.ms : 0;
      const auto limit = p.mark.in_collective ? collective_timeout + kCollectiveGrace : hang_timeout;
      if (idle_ms <= static_cast<std::uint64_t>(limit.count()) * 1000) continue;
      RankStatus s;
      s.phase = static_cast<std::int32_t>(p.phase);
      s.step = p.step;
      s.total = p.total;
      s.in_collective = p.mark.in_collective;
      s.collective = p.mark.collective;
      s.collectives = p.mark.collectives;
      std::fprintf(stderr, "wan: error: rank %d: stopped responding: no progress for %llu s %s; ending this rank\n",
                   rank, static_cast<unsigned long long>(idle_ms / 1000), describe_rank_activity(s).c_str());
      std::fflush(stderr);
      // The process ends here: its sockets close and its NCCL communicators die with it, which ends
      // the peers' collectives; torchrun, srun and mpirun then stop the other ranks.
      _exit(static_cast<int>(ErrorCode::kCommunication));
    }
  });
}

ProcessWatchdog::~ProcessWatchdog() {
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->stop = true;
  }
  state_->wake.notify_all();
  state_->thread.join();
}

}  // namespace wan
