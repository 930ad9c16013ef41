#include "wan/launcher.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <optional>
#include <thread>

#include "core/runtime.h"
#include "dist/communicator.h"
#include "dist/watchdog.h"
#include "pipeline/demo_model.h"
#include "pipeline/memory_check.h"
#include "pipeline/plan.h"
#include "pipeline/rank_hooks.h"
#include "wan/error.h"
#include "wan/generation.h"
#include "wan/model_info.h"

namespace wan {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// The launcher's periods and grace times, each named once.
constexpr auto kPollPeriod = std::chrono::milliseconds(100);  // board reads, exits, watchdog, on_poll
constexpr auto kCancelGrace = std::chrono::seconds(10);       // workers stop at the end of their step
constexpr auto kStopGrace = std::chrono::seconds(3);          // SIGTERM to SIGKILL when ending a run
constexpr auto kVictimGrace =
    std::chrono::milliseconds(600);                      // a communication error usually echoes another rank's failure
constexpr auto kStoreTimeout = std::chrono::minutes(5);  // the rendezvous store's own waits
constexpr auto kReapPeriod = std::chrono::milliseconds(20);  // waitpid polls while stopping workers
constexpr auto kSpawnFailureGrace =
    std::chrono::milliseconds(100);  // a spawn failed: the started workers get this long

struct Worker {
  pid_t pid = -1;
  bool running = false;
  int status = 0;
};

struct Spawn {
  std::string worker_path;
  std::vector<std::string> args;  // after the program name
  int world_size = 1;
  std::string log_dir;
};

pid_t spawn(const Spawn& o, int rank, int port, const std::string& run_id) {
  std::vector<std::string> args = {o.worker_path};
  args.insert(args.end(), o.args.begin(), o.args.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) throw Error(ErrorCode::kIo, std::string("cannot start a worker process: ") + std::strerror(errno));
  if (pid == 0) {
    // Never outlive the launcher; SIGTERM, so the rank removes a half-written output first
    // (remove_partial_files_on_termination).
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    // A process group of its own: a terminal's Ctrl-C reaches the launcher alone, which cancels the run
    // through the board (every rank stops at the end of its step) instead of killing ranks mid-step.
    setpgid(0, 0);
    if (getppid() != parent) _exit(127);
    setenv("RANK", std::to_string(rank).c_str(), 1);
    setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
    setenv("WORLD_SIZE", std::to_string(o.world_size).c_str(), 1);
    setenv("MASTER_ADDR", "127.0.0.1", 1);
    setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
    setenv("WAN_STORE_HOSTED", "1", 1);
    setenv("WAN_RUN_ID", run_id.c_str(), 1);
    setenv("WAN_GLOO_HOST", "127.0.0.1", 1);
    if (!o.log_dir.empty()) {
      const std::string log = o.log_dir + "/rank-" + std::to_string(rank) + ".log";
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
      }
    }
    execv(o.worker_path.c_str(), argv.data());
    std::fprintf(stderr, "wan: error: cannot run %s: %s\n", o.worker_path.c_str(), std::strerror(errno));
    _exit(127);
  }
  return pid;
}

std::string describe_exit(int status) {
  if (WIFSIGNALED(status))
    return std::string("killed by signal ") + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) +
           ")";
  return "exited with code " + std::to_string(WEXITSTATUS(status));
}

// Ends every running worker: SIGTERM, then SIGKILL after a grace period; reaps them all.
void stop_all(std::vector<Worker>& workers, std::chrono::milliseconds grace) {
  for (auto& w : workers)
    if (w.running) kill(w.pid, SIGTERM);
  const auto deadline = Clock::now() + grace;
  for (;;) {
    bool any = false;
    for (auto& w : workers) {
      if (!w.running) continue;
      if (waitpid(w.pid, &w.status, WNOHANG) == w.pid)
        w.running = false;
      else
        any = true;
    }
    if (!any) return;
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(kReapPeriod);
  }
  for (auto& w : workers)
    if (w.running) {
      kill(w.pid, SIGKILL);
      waitpid(w.pid, &w.status, 0);
      w.running = false;
    }
}

std::string phase_of(const RankStatus& s) { return phase_description(static_cast<Phase>(s.phase)); }

// The folder of a run's job file: "<temp>/wan-job-<launcher pid>-<run id>"; one whose launcher is gone
// (killed before it could clean up) is removed by the next launch.
constexpr const char* kRunDirPrefix = "wan-job-";

void remove_stale_run_dirs() {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(fs::temp_directory_path(), ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(kRunDirPrefix, 0) != 0) continue;
    const long pid = std::atol(name.c_str() + std::strlen(kRunDirPrefix));
    if (pid > 0 && kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) fs::remove_all(entry.path(), ec);
  }
}

// Supervises the spawned workers until they end; the result names the failed rank, its phase and
// the cause (the dead or hung rank, not the peers that failed with a communication error after it).
LaunchResult supervise(std::vector<Worker>& workers, ProgressBoard& board, const Job& job, const LaunchOptions& o,
                       const std::vector<std::uint64_t>& spawn_ms, fs::file_time_type started) {
  LaunchResult result;
  result.run_id = job.run_id;
  const int world = job.config.world_size;
  int failed_rank = -1;
  std::string cause;
  bool cancelled = false;
  Clock::time_point cancel_deadline{}, victim_grace{};
  // A failure's weight: the rank that died or hung is the cause; ranks that then fail with a
  // communication error are its victims.
  auto weight = [&](int rank, bool died) {
    if (died) return 3;
    return board.read(rank).exit_code == static_cast<int>(ErrorCode::kCommunication) ? 1 : 2;
  };
  int failed_weight = 0;
  std::vector<WatchedRank> watched(world);
  for (;;) {
    int alive = 0;
    for (int r = 0; r < world; ++r) {
      Worker& w = workers[r];
      watched[r].running = w.running;
      if (!w.running) continue;
      if (waitpid(w.pid, &w.status, WNOHANG) == w.pid) {
        w.running = false;
        watched[r].running = false;
        if (!(WIFEXITED(w.status) && WEXITSTATUS(w.status) == 0) && !cancelled) {
          const int wt = weight(r, WIFSIGNALED(w.status));
          if (wt > failed_weight) {
            failed_rank = r;
            failed_weight = wt;
            cause = describe_exit(w.status);
          }
        }
        continue;
      }
      ++alive;
      watched[r].status = board.read(r);
      watched[r].last_progress_ms = watched[r].status.progress_ms ? watched[r].status.progress_ms : spawn_ms[r];
      watched[r].stopped = process_stopped(w.pid);
      if (watched[r].status.state != RankState::kRunning && watched[r].status.state != RankState::kStarting)
        watched[r].running = false;
    }
    if (failed_weight < 3 && !cancelled) {
      const HangVerdict hang =
          judge_hang(watched, ProgressBoard::monotonic_ms(), std::chrono::seconds(job.config.hang_timeout_seconds));
      if (hang.rank >= 0) {
        failed_rank = hang.rank;
        failed_weight = 3;
        cause = hang.message;
      }
    }
    if (o.on_poll) o.on_poll(board);
    if (failed_weight == 1 && victim_grace == Clock::time_point{}) victim_grace = Clock::now() + kVictimGrace;
    if (failed_weight >= 2 || alive == 0 || (failed_weight == 1 && Clock::now() > victim_grace)) break;
    if (o.cancel && o.cancel->load() && !cancelled) {
      cancelled = true;
      board.request_cancel();
      cancel_deadline = Clock::now() + kCancelGrace;
    }
    if (cancelled && (Clock::now() > cancel_deadline || (o.stop_now && o.stop_now->load()))) break;
    std::this_thread::sleep_for(kPollPeriod);
  }

  // A cancel that came after every rank had finished cancels nothing: the outputs are complete.
  bool all_done = true;
  for (const Worker& w : workers)
    all_done = all_done && !w.running && WIFEXITED(w.status) && WEXITSTATUS(w.status) == 0;
  if (all_done && failed_rank < 0) cancelled = false;
  const bool clean_exit = failed_rank < 0 && !cancelled;
  if (!clean_exit) board.request_cancel();
  stop_all(workers, kStopGrace);
  if (clean_exit) return result;

  // Leftovers of interrupted writes.
  for (const std::string& out : {job.request.output, job.request.frames_dir, job.request.save_latent})
    for (const auto& w : workers) {
      if (out.empty()) continue;
      std::error_code ec;
      fs::remove_all(out + ".part-" + std::to_string(w.pid), ec);
    }
  // The sampling is never lost: rank 0 saved the latent before decoding. Only a latent this run wrote
  // is named (an earlier one under the same name, replaced with --overwrite, is not this run's sampling).
  const GenerationRequest& r = job.request;
  const auto kept_latent = [&]() -> std::string {
    const std::string latent = !r.save_latent.empty()                       ? r.save_latent
                               : (r.output.empty() && r.frames_dir.empty()) ? ""
                                                                            : rescue_latent_path(r);
    std::error_code ec;
    const bool written_now =
        !latent.empty() && fs::exists(latent, ec) && fs::last_write_time(latent, ec) >= started && !ec;
    return written_now ? latent : "";
  };
  if (cancelled && failed_rank < 0) {
    result.exit_code = static_cast<int>(ErrorCode::kCancelled);
    result.message = "cancelled";
    // Cancelled once the sampling was done: rank 0 kept the latent and said where in its message (or,
    // stopped at once by a second Ctrl-C, left it where it saves it).
    const std::string rank0 = board.read(0).error;
    if (const std::size_t kept = rank0.find("the sampled latent is kept in"); kept != std::string::npos)
      result.message += " (" + rank0.substr(kept);
    else if (const std::string latent = kept_latent(); !latent.empty())
      result.message += " (the sampled latent is kept in " + latent +
                        ": decode it with `wan generate --decode-latent " + latent + " --model ... --output ...`)";
    return result;
  }
  const RankStatus s = board.read(failed_rank);
  std::string message = "rank " + std::to_string(failed_rank) + " failed while " + phase_of(s) + ": ";
  message += !s.error.empty() ? s.error : cause;
  if (!s.error.empty() && cause.rfind("exited", 0) != 0) message += " (" + cause + ")";
  result.message = message + "; the other ranks were stopped";
  result.exit_code = s.exit_code > 0 ? s.exit_code : static_cast<int>(ErrorCode::kCommunication);
  const std::string latent = kept_latent();
  if (!latent.empty() && result.message.find(latent) == std::string::npos)
    result.message += "; the sampled latent is kept in " + latent + ": decode it with `wan generate --decode-latent " +
                      latent + " --model ... --output ...`";
  return result;
}

}  // namespace

LaunchResult launch_job(const Job& given, const LaunchOptions& o) {
  const fs::file_time_type started = fs::file_time_type::clock::now();
  Job job = given;
  DistConfig& c = job.config;
  const GenerationRequest& r = job.request;
  if (!r.decode_latent.empty())
    throw Error(ErrorCode::kInvalidArgument,
                "--decode-latent runs in one process; drop --world-size and the distributed flags");
  c.backend = resolve_backend(c, r.device);
  // The launcher gives each worker its rank; a config's `rank` outside the world is still a mistake.
  if (c.world_size >= 1 && (c.rank < 0 || c.rank >= c.world_size))
    throw Error(ErrorCode::kInvalidArgument,
                "rank " + std::to_string(c.rank) +
                    " is out of range: ranks run from 0 to world_size - 1 = " + std::to_string(c.world_size - 1) +
                    " (the launcher gives each worker its rank: drop `rank` from the config)");
  c.rank = 0;
  if (r.device.is_cuda() && cuda_device_count() == 0)
    throw Error(ErrorCode::kUnsupported, "--device " + device_name(r.device) +
                                             ": no CUDA GPU is visible (or this build has no CUDA): "
                                             "run the ranks on the CPU with --device cpu");
  // Every rank runs on this machine: as many GPUs as ranks.
  // The model's heads (its headers only) so that a Ulysses size that does not divide them fails here,
  // not after every rank has loaded; a model that cannot be read is reported by the ranks.
  // A run that names no model runs the demo model: probed when it exists (when it does not, rank 0
  // writes it, and its size fits any machine).
  std::optional<ModelDims> dims;
  if (const ModelFiles probe = model_files_or_demo(r); !probe.model_dir.empty() || !probe.dit.empty()) {
    try {
      dims = inspect_model(probe).dims;
    } catch (const Error&) {
    }
  }
  check_dist_config(c, DistEnvironment{r.device.is_cpu() ? -1 : cuda_device_count(), dims ? dims->num_heads : 0});
  // Settings and folders are checked by every worker too; checking here fails before any process starts.
  if (!r.output.empty() || !r.frames_dir.empty() || !r.save_latent.empty()) validate_settings(r);
  // Ranks on the CPU share this host: the world's need against its available memory, once, before any
  // rank takes some. A rank on a GPU checks its own device before it loads (pipeline/generate.cpp).
  if (dims && r.device.is_cpu()) check_memory_fits(*dims, r, c);
  const std::string worker_path = o.worker_path.empty() ? default_worker_path() : o.worker_path;
  if (access(worker_path.c_str(), X_OK) != 0)
    throw Error(ErrorCode::kFileNotFound, "worker executable " + worker_path + " not found or not executable");
  ProgressBoard::remove_stale();
  if (job.run_id.empty())
    job.run_id = "run-" + std::to_string(getpid()) + "-" +
                 std::to_string(std::chrono::system_clock::now().time_since_epoch().count() % 1000000000);
  ProgressBoard board = ProgressBoard::create(job.run_id, c.world_size);

  // The job file every rank reads, in a folder of the run's own (removed at the end).
  remove_stale_run_dirs();
  const fs::path run_dir = fs::temp_directory_path() / (kRunDirPrefix + std::to_string(getpid()) + "-" + job.run_id);
  fs::create_directories(run_dir);
  struct RemoveDir {
    fs::path dir;
    ~RemoveDir() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } remove_dir{run_dir};
  const std::string job_path = (run_dir / "job.json").string();
  save_job(job_path, job);

  int port = o.master_port;
  auto store = host_tcp_store(port, kStoreTimeout);  // kCommunication when the port is taken
  Spawn sp;
  sp.worker_path = worker_path;
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int threads = o.threads_per_rank > 0 ? o.threads_per_rank : std::max(1, cores / c.world_size);
  sp.args = {"--threads", std::to_string(threads), "--job", job_path};
  sp.world_size = c.world_size;
  sp.log_dir = o.log_dir;
  std::vector<Worker> workers(c.world_size);
  std::vector<std::uint64_t> spawn_ms(c.world_size, 0);
  try {
    for (int rank = 0; rank < c.world_size; ++rank) {
      spawn_ms[rank] = ProgressBoard::monotonic_ms();
      workers[rank].pid = spawn(sp, rank, port, job.run_id);
      workers[rank].running = true;
      if (o.on_spawn) o.on_spawn(rank, workers[rank].pid);
    }
  } catch (...) {
    stop_all(workers, kSpawnFailureGrace);
    throw;
  }
  return supervise(workers, board, job, o, spawn_ms, started);
}

std::string format_rank_status(int rank, const RankStatus& s) {
  const Phase phase = static_cast<Phase>(s.phase);
  std::string what, unit = "step";
  bool counted = false;  // "k/N" means something in this phase
  auto count = [&](const char* words) {
    counted = s.total > 0;
    return counted ? std::string(words) + " " + std::to_string(s.step) + "/" + std::to_string(s.total)
                   : std::string(phase == Phase::kSampling ? "sampling" : "decoding");
  };
  switch (phase) {
    case Phase::kNone:
      what = "starting";
      break;
    case Phase::kStarting:
      what = "checking the settings and model files";
      break;
    case Phase::kLoading:
      what = "loading the DiT";
      break;
    case Phase::kEncodingText:  // image-to-video's second part (1 of 2) is the start picture
      what = s.step >= 1 && s.total >= 2 ? "encoding the start picture" : "encoding the prompt";
      break;
    case Phase::kSampling:
      what = count("sampling step");
      if (!s.detail.empty()) what += " (" + s.detail + ")";  // Wan2.2 A14B: the expert of the step
      break;
    case Phase::kDecoding:
      unit = "frame";  // the VAE decodes latent frame by latent frame
      what = count("decoding frame");
      break;
    case Phase::kWriting:
      what = "writing the video";
      break;
    case Phase::kDone:
      what = "done";
      break;
    case Phase::kFailed:
      what = "failed";
      break;
  }
  if (s.state == RankState::kFailed && phase != Phase::kFailed) what = "failed while " + what;
  if (s.state == RankState::kCancelled) what = "cancelled";
  if (s.state == RankState::kDone && phase != Phase::kDone) what = "done";
  std::string text = "rank " + std::to_string(rank) + ": " + what;
  char part[64];
  if (counted && s.seconds_per_step > 0 && s.state == RankState::kRunning) {
    std::snprintf(part, sizeof part, " · %.*f s/%s", s.seconds_per_step < 10 ? 1 : 0, s.seconds_per_step, unit.c_str());
    text += part;
  }
  if (s.memory_bytes > 0) {
    std::snprintf(part, sizeof part, " · %.2f GiB", static_cast<double>(s.memory_bytes) / (1ull << 30));
    text += part;
  }
  if (s.state == RankState::kFailed && !s.error.empty()) text += " · " + s.error;
  return text;
}

std::string default_worker_path() {
  if (const char* p = std::getenv("WAN_WORKER")) return p;
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return (self.parent_path() / "wan-worker").string();
}

}  // namespace wan
