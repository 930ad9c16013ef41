// Hang detection from progress marks (core/progress_mark.h), for the two places that watch ranks:
// the launcher (every rank, through the progress board) and a worker that no launcher watches
// (torchrun, srun, mpirun: its own marks). A rank is hung when it made no progress for the hang
// timeout outside any collective, or when every rank waits in a collective and none progresses. A
// rank waiting in a collective while another works (rank 0 reading a checkpoint the others wait to
// receive) is not: its peer is slow, not stuck. No torch.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "wan/progress_board.h"

namespace wan {

// "while sampling (step 3 of 8), waiting in all_to_all (collective #57)" or "..., outside any collective
// (the last: all_gather (collective #56), finished)": what a rank's status says it was doing. Collectives
// are counted over all kinds.
std::string describe_rank_activity(const RankStatus& status);

struct HangVerdict {
  int rank = -1;        // the rank named as hung (-1: none)
  std::string message;  // "stopped responding: no progress for 8 s while ...; rank 0 waits in ..."
};

struct WatchedRank {
  RankStatus status;
  std::uint64_t last_progress_ms = 0;  // the status's mark, or the process's start before its first
  bool running = true;
  bool stopped = false;  // the process is stopped by a signal (SIGSTOP, a debugger): the first suspect
};

// The launcher's verdict over all ranks at `now_ms` (CLOCK_MONOTONIC ms).
HangVerdict judge_hang(const std::vector<WatchedRank>& ranks, std::uint64_t now_ms, std::chrono::seconds hang_timeout);

// Whether the process `pid` is stopped (state T or t in /proc/<pid>/stat).
bool process_stopped(int pid);

// The watchdog of a worker no launcher watches: a thread that reads this process's marks every
// second; when the rank is hung (outside a collective for hang_timeout; inside one for
// collective_timeout + 30 s, where the library's own timeout should have ended it) it prints
// "wan: error: rank R: stopped responding: ..." and ends the process with kCommunication, so
// torchrun, srun or mpirun end the others. Stops with its destructor.
class ProcessWatchdog {
 public:
  ProcessWatchdog(int rank, std::chrono::seconds hang_timeout, std::chrono::seconds collective_timeout);
  ~ProcessWatchdog();
  ProcessWatchdog(const ProcessWatchdog&) = delete;
  ProcessWatchdog& operator=(const ProcessWatchdog&) = delete;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace wan
