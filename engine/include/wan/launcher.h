// The local launcher: spawns one wan-worker per rank on this machine, hosts the rendezvous store on a
// free port, creates the run's progress board, supervises the workers (exit codes, heartbeats, cancel)
// and reaps them. A rank that fails, dies or stops beating stops the whole run within the heartbeat
// timeout; no worker is left behind, the board is unlinked and half-written outputs are removed.
// No torch types: the studio drives it too.
#pragma once
#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "wan/generation.h"
#include "wan/progress_board.h"

namespace wan {

struct LaunchOptions {
  std::string worker_path;               // the wan-worker executable
  std::vector<std::string> worker_args;  // its arguments (--dist-config FILE generate ...)
  int world_size = 1;
  int master_port = 0;                   // 0: a free port
  std::string run_id;                    // empty: "run-<pid>-<time>"
  double heartbeat_timeout_seconds = 8;  // a running rank silent this long counts as hung
  std::vector<std::string> output_paths; // outputs whose "<path>.part-<pid>" leftovers to remove on failure
  std::string log_dir;                   // non-empty: rank r's stdout and stderr go to <log_dir>/rank-<r>.log
  const std::atomic<bool>* cancel = nullptr;                  // set (e.g. by SIGINT) to cancel the run
  std::function<void(const ProgressBoard&)> on_poll;          // called every poll (progress display)
  std::function<void(int rank, int pid)> on_spawn;            // tests and logs
};

struct LaunchResult {
  int exit_code = 0;     // 0, or a wan::ErrorCode value
  std::string message;   // empty on success; names the rank, the phase and the cause otherwise
  std::string run_id;
};

LaunchResult launch_local(const LaunchOptions& options);

// The worker's `generate` arguments for a request (flags of `wan generate`), e.g. for LaunchOptions.
std::vector<std::string> generate_arguments(const GenerationRequest& request);

// wan-worker beside the running executable (or $WAN_WORKER).
std::string default_worker_path();

}  // namespace wan
