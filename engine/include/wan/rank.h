// One rank of a run, in the engine: the rank contract, written once, for every way a rank starts
// (Wan Studio's launcher, `wan generate` in one process, torchrun, srun, mpirun). No torch types.
//
// The rank contract (run_rank):
//   1. The job's world matches the launcher's (config.world_size == env.world_size); the backend
//      follows the device (resolve_backend: gloo for CPU ranks); a GPU rank works on the GPU of its
//      local rank; the config is checked; the attention mode is applied.
//   2. The ranks connect: NCCL, gloo, or no library for a world of one started by nobody.
//   3. Rank 0 prepares first (the task's defaults, the demo model when no model is named: created
//      once), then the others, so every rank runs the same request.
//   4. Rank 0 draws the seed when none is given and broadcasts it.
//   5. Every rank samples (its share: USP x CFG parallel, FSDP-sharded weights where configured).
//   6. Rank 0 alone saves the latent (before decoding, so a failed decode never loses the sampling),
//      decodes and writes the video, frames and sidecar; the other ranks end after sampling.
#pragma once
#include <string>

#include "wan/generation.h"
#include "wan/job.h"
#include "wan/progress_board.h"
#include "wan/worker_env.h"

namespace wan {

// What a rank tells the outside world: the progress board, the console, or both. Called on the
// rank's own thread.
class RankReporter {
 public:
  virtual ~RankReporter() = default;
  // Once the rank knows its device (a GPU's index is then set).
  virtual void started(int rank, const Device& device) {}
  // May throw wan::Error(kCancelled) to stop the run (the board's cancel flag).
  virtual void progress(const ProgressEvent& event) = 0;
  virtual void preview(const PreviewImage& image) {}  // rank 0, after each sampling step
  virtual void note(const std::string& text) {}       // a remark for the user (rank 0), e.g. the demo model is used
  // Rank 0, once its outputs are written: what it wrote and the request as it ran (defaults resolved).
  virtual void result(const GenerationResult& result, const GenerationRequest& request) {}
};

// Runs this rank's part of `job` (the contract above). Throws wan::Error: kInvalidArgument for a job
// that does not fit the world, kUnsupported for a backend this build or machine lacks,
// kCommunication when a peer fails, kCancelled when the reporter cancels, and whatever the
// generation throws. Rank 0's result names the outputs; the others' hold the seed and timings.
GenerationResult run_rank(const Job& job, const WorkerEnv& env, RankReporter& reporter);

// A worker process from start to end: reports to the run's progress board when the job or the
// environment names one (else to `console`, rank 0 only), starts the watchdog where no launcher
// watches (torchrun, srun, mpirun: a rank without progress for config.hang_timeout_seconds is ended
// with a message naming it, its phase and its collective), runs run_rank, and turns every error into
// a line on stderr ("wan: error: rank R: ...") and the board. Returns the process exit code (0, or
// a wan::ErrorCode value). `threads`: LibTorch CPU threads (0: all cores).
int run_worker(const Job& job, int threads, RankReporter* console);

}  // namespace wan
