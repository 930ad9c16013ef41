// The local launcher: runs a Job as one wan-worker process per rank on this machine. It checks the
// job, writes it to one file every rank reads, hosts the rendezvous store on a free port, creates the
// run's progress board, supervises the workers (exit codes, the hang watchdog, cancel) and reaps
// them. A rank that fails, dies or stops making progress (dist/watchdog.h) ends the whole run: no
// worker is left behind, the board is unlinked, half-written outputs are removed, and a latent rank
// 0 saved before decoding is kept and named in the message. The CLI (`wan generate --world-size N`)
// and the studio both run through launch_job and keep only their presentation. No torch types.
//
// Thread and cancel behaviour: launch_job blocks until every worker has ended; call it from a
// thread of your own in a GUI. Setting *options.cancel stops the run at the end of the workers'
// current step (the board's cancel flag), and after kCancelGrace kills what is left; setting
// *options.stop_now (a second Ctrl-C) ends the workers at once (SIGTERM: each removes its half-written
// files), and the result is "cancelled" either way.
#pragma once
#include <atomic>
#include <functional>
#include <string>

#include "wan/job.h"
#include "wan/progress_board.h"

namespace wan {

struct LaunchOptions {
  std::string worker_path;   // the wan-worker executable (empty: default_worker_path())
  int threads_per_rank = 0;  // LibTorch CPU threads of each worker (0: this machine's cores / world_size)
  int master_port = 0;       // 0: a free port
  std::string log_dir;       // non-empty: rank r's stdout and stderr go to <log_dir>/rank-<r>.log
  const std::atomic<bool>* cancel = nullptr;          // set (e.g. by SIGINT) to cancel the run
  const std::atomic<bool>* stop_now = nullptr;        // set (a second SIGINT) to end the workers without waiting
  std::function<void(const ProgressBoard&)> on_poll;  // every poll period (progress display), on the calling thread
  std::function<void(int rank, int pid)> on_spawn;    // tests and logs
};

struct LaunchResult {
  int exit_code = 0;    // 0, or a wan::ErrorCode value
  std::string message;  // empty on success; names the rank, the phase and the cause otherwise
  std::string run_id;
};

// Runs `job` (job.config.world_size workers; job.run_id names the board, "run-<pid>-<time>" when
// empty). Throws wan::Error before any worker starts: kInvalidArgument / kUnsupported for a config
// or request that cannot run here (too few GPUs, a bad output path), kFileNotFound for a missing
// worker, kCommunication for a taken port. Failures of the run itself come back in the result.
LaunchResult launch_job(const Job& job, const LaunchOptions& options);

// One line for a rank's status on the board in plain words, as the CLI prints it and the studio's
// progress bars show it: "rank 0: loading the DiT", "rank 1: sampling step 3/10 · 2.1 s/step · 1.40 GiB",
// "rank 0: decoding frame 2/5 · 0.8 s/frame", "rank 2: failed while sampling step 0/5 · <error>".
// A count only where the phase has one; s/step or s/frame only while the rank runs.
std::string format_rank_status(int rank, const RankStatus& status);

// wan-worker beside the running executable (or $WAN_WORKER).
std::string default_worker_path();

}  // namespace wan
