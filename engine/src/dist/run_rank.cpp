// run_rank and run_worker (wan/rank.h): the rank contract, written once.
#include <cstdio>
#include <cstdlib>
#include <random>

#include "core/memory_report.h"
#include "core/out_of_memory.h"
#include "core/progress_mark.h"
#include "core/runtime.h"
#include "dist/board_reporter.h"
#include "dist/communicator.h"
#include "dist/rank_runtime.h"
#include "dist/watchdog.h"
#include "model/layers.h"
#include "pipeline/demo_model.h"
#include "pipeline/latent_preview.h"
#include "pipeline/rank_hooks.h"
#include "wan/error.h"
#include "wan/rank.h"
#include "weights/file_util.h"

namespace wan {
namespace {

// Step 1 of the contract: the job fitted to the world this process was started in.
Job fit_to_world(const Job& given, const WorkerEnv& env) {
  Job job = given;
  DistConfig& config = job.config;
  if (config.world_size != env.world_size)
    throw Error(ErrorCode::kInvalidArgument, "the config says world_size " + std::to_string(config.world_size) +
                                                 " but the launcher (" + env.launcher + ") started " +
                                                 std::to_string(env.world_size) +
                                                 " ranks; start as many ranks as the config's world_size");
  config.rank = env.rank;
  Device& device = job.request.device;
  to_torch_device(device);  // kUnsupported without a CUDA GPU: before connecting
  config.backend = resolve_backend(config, device);
  if (config.backend == Backend::kNccl && device.is_cuda() && device.index < 0)
    device.index = env.local_rank;  // a GPU per local rank
  check_dist_config(config, DistEnvironment{});
  if (job.run_id.empty()) job.run_id = env.run_id;
  return job;
}

std::unique_ptr<Communicator> connect(const Job& job, const WorkerEnv& env) {
  const DistConfig& config = job.config;
  if (env.launcher == "none" && env.world_size == 1)
    return make_single_rank_communicator();  // one process, nobody to meet
  if (env.master_addr == "127.0.0.1" || env.master_addr == "localhost") setenv("WAN_GLOO_HOST", "127.0.0.1", 0);
  RendezvousOptions r;
  r.master_addr = env.master_addr;
  r.master_port = env.master_port;
  r.rank = env.rank;
  r.world_size = env.world_size;
  r.host_store = env.rank == 0 && !env.store_hosted;
  r.timeout = std::chrono::seconds(config.collective_timeout_seconds);
  const Device& device = job.request.device;
  if (config.backend != Backend::kNccl && env.world_size == 1) return make_single_rank_communicator();
  // Waiting for the other ranks to start is waiting for peers, as in a collective: the watchdogs give
  // it the collective timeout (the store's own), not the hang timeout.
  if (r.host_store && env.launcher != "wan")  // torchrun, srun, mpirun: say where the others must come
    std::fprintf(stderr, "rank 0: hosting the rendezvous on port %d (MASTER_ADDR %s), waiting for %d ranks\n",
                 r.master_port, r.master_addr.c_str(), r.world_size);
  note_collective_begin(CollectiveKind::kRendezvous);
  struct EndMark {
    ~EndMark() { note_collective_end(); }
  } end_mark;
  if (config.backend == Backend::kNccl) return connect_nccl(r, device.index < 0 ? env.local_rank : device.index);
  return connect_gloo(r);
}

// Step 3: rank 0 creates the demo model if needed; the others follow once it is there. The defaults
// are resolved by make_plan on every rank from the same job and model files (they depend on the model:
// Wan2.2 A14B and TI2V-5B have their own), so the ranks agree.
void prepare(Job& job, Communicator& world, RankReporter& reporter) {
  auto prepare_here = [&] {
    const std::string note = use_demo_model_if_none(job.request);
    if (!note.empty() && world.rank() == 0) reporter.note(note);
  };
  if (world.rank() == 0) prepare_here();
  world.barrier();
  if (world.rank() != 0) prepare_here();
  job.request.dtype = effective_dtype(job.config, job.request.dtype, job.request.device.is_cpu());
}

// Step 4: one seed for every rank.
void agree_on_seed(GenerationRequest& request, Communicator& world) {
  torch::Tensor seed = torch::tensor({static_cast<std::int64_t>(request.seed)}, torch::kInt64);
  // Only -1 means "draw one"; any other negative seed is refused by make_plan's checks.
  if (world.rank() == 0 && request.seed == -1) seed[0] = static_cast<std::int64_t>(std::random_device{}() & 0x7fffffff);
  world.broadcast(seed, 0);
  request.seed = seed[0].item<std::int64_t>();
}

// The worker's reporter: the board (when the run has one), the memory by phase, the console.
class WorkerReporter : public RankReporter {
 public:
  WorkerReporter(const std::string& run_id, int rank, RankReporter* console) : rank_(rank), memory_(rank) {
    if (!run_id.empty())
      board_ = std::make_unique<BoardReporter>(run_id, rank);
    else if (rank == 0)
      console_ = console;
  }
  void started(int rank, const Device& device) override {
    if (device.is_cuda()) memory_.set_cuda_device(device.index < 0 ? 0 : device.index);
    if (console_) console_->started(rank, device);
  }
  void progress(const ProgressEvent& e) override {
    memory_.on_progress(e.phase, e.step);
    if (console_) console_->progress(e);
    if (board_) board_->progress(e, memory_.current_bytes(), memory_.peak_bytes());
  }
  void preview(const PreviewImage& image) override {
    if (board_) board_->preview(image);
  }
  // Started by wan's launcher, which reports the failed rank's error in its own last line (the board
  // carries it): the worker then keeps its error off the terminal, so a failure reads as one line.
  bool supervised() const { return board_ != nullptr; }
  void note(const std::string& text) override {
    if (console_)
      console_->note(text);
    else
      std::fprintf(stderr, "note: %s\n", text.c_str());
  }
  void result(const GenerationResult& result, const GenerationRequest& request) override {
    if (console_) console_->result(result, request);
  }
  void finish(RankState state, int code, const std::string& error) {
    memory_.finish();
    if (board_) board_->finish(state, code, error);
  }

 private:
  int rank_;
  RankMemory memory_;
  std::unique_ptr<BoardReporter> board_;
  RankReporter* console_ = nullptr;
};

}  // namespace

GenerationResult run_rank(const Job& given, const WorkerEnv& env, RankReporter& reporter) {
  Job job = fit_to_world(given, env);
  set_attention_mode(job.config.attention_mode);  // sdpa (fused) or math (reference)
  reporter.started(env.rank, job.request.device);
  const std::unique_ptr<Communicator> world = connect(job, env);
  prepare(job, *world, reporter);
  agree_on_seed(job.request, *world);

  RankRuntime runtime(*world, job.config);
  RankHooks hooks = runtime.hooks(env.rank == 0);
  hooks.save_latent_before_decode = true;
  hooks.rank = env.rank;
  if (world->size() > 1) hooks.after_sampling = [&] { world->barrier(); };
  if (env.rank == 0) hooks.on_note = [&](const std::string& text) { reporter.note(text); };
  if (env.rank == 0)
    hooks.on_step = [&](int step, int total, const torch::Tensor& latent) {
      reporter.preview(latent_preview(latent, step, total));
    };
  const GenerationResult result = generate_with_hooks(
      job,
      [&](const ProgressEvent& e) {
        note_phase(e.phase, e.step, e.total);
        reporter.progress(e);
      },
      hooks);
  if (env.rank == 0) reporter.result(result, job.request);
  return result;
}

int run_worker(const Job& given, int threads, RankReporter* console) {
  int rank = -1;  // not known until the environment is read
  std::unique_ptr<WorkerReporter> reporter;
  try {
    const WorkerEnv env = worker_env_from_process();
    rank = env.rank;
    const std::string run_id = !given.run_id.empty() ? given.run_id : env.run_id;
    reporter = std::make_unique<WorkerReporter>(run_id, rank, console);
    init_runtime(threads);
    remove_partial_files_on_termination();      // stopped by a signal: no half-written output left behind
    std::unique_ptr<ProcessWatchdog> watchdog;  // the launcher watches its own workers through the board
    if (run_id.empty())
      watchdog = std::make_unique<ProcessWatchdog>(rank, std::chrono::seconds(given.config.hang_timeout_seconds),
                                                   std::chrono::seconds(given.config.collective_timeout_seconds));
    run_rank(given, env, *reporter);
    reporter->finish(RankState::kDone, 0, "");
    return 0;
  } catch (const std::exception& failure) {
    const Error e = to_engine_error(failure);  // the run's errors are wan::Error already; this is the rest
    if (reporter)
      reporter->finish(e.code() == ErrorCode::kCancelled ? RankState::kCancelled : RankState::kFailed,
                       static_cast<int>(e.code()), e.what());
    const char* kind = e.code() == ErrorCode::kInternal ? "internal error" : "error";
    if (reporter && reporter->supervised() && !verbose_errors()) return static_cast<int>(e.code());
    if (rank >= 0)
      std::fprintf(stderr, "wan: %s: rank %d: %s\n", kind, rank, e.what());
    else
      std::fprintf(stderr, "wan: %s: %s\n", kind, e.what());
    return static_cast<int>(e.code());
  }
}

}  // namespace wan
