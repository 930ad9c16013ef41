#include "wan/launcher.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <thread>

#include "dist/communicator.h"
#include "wan/error.h"
#include "wan/generation.h"

namespace wan {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct Worker {
  pid_t pid = -1;
  bool running = false;
  int status = 0;
};

pid_t spawn(const LaunchOptions& o, int rank, int port, const std::string& run_id) {
  std::vector<std::string> args = {o.worker_path};
  args.insert(args.end(), o.worker_args.begin(), o.worker_args.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) throw Error(ErrorCode::kIo, std::string("cannot start a worker process: ") + std::strerror(errno));
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the launcher
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
  if (WIFSIGNALED(status)) return std::string("killed by signal ") + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")";
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
      if (waitpid(w.pid, &w.status, WNOHANG) == w.pid) w.running = false;
      else any = true;
    }
    if (!any) return;
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (auto& w : workers)
    if (w.running) {
      kill(w.pid, SIGKILL);
      waitpid(w.pid, &w.status, 0);
      w.running = false;
    }
}

std::string phase_of(const RankStatus& s) {
  const Phase p = static_cast<Phase>(s.phase);
  return p == Phase::kNone ? std::string("starting") : phase_name(p);
}

}  // namespace

LaunchResult launch_local(const LaunchOptions& o) {
  LaunchResult result;
  if (o.world_size < 1) throw Error(ErrorCode::kInvalidArgument, "world_size must be at least 1");
  if (access(o.worker_path.c_str(), X_OK) != 0)
    throw Error(ErrorCode::kFileNotFound, "worker executable " + o.worker_path + " not found or not executable");
  ProgressBoard::remove_stale();
  result.run_id = o.run_id.empty() ? "run-" + std::to_string(getpid()) + "-" +
                                         std::to_string(std::chrono::system_clock::now().time_since_epoch().count() % 1000000000)
                                   : o.run_id;
  ProgressBoard board = ProgressBoard::create(result.run_id, o.world_size);
  int port = o.master_port;
  auto store = host_tcp_store(port, std::chrono::minutes(5));  // kCommunication when the port is taken

  std::vector<Worker> workers(o.world_size);
  try {
    for (int r = 0; r < o.world_size; ++r) {
      workers[r].pid = spawn(o, r, port, result.run_id);
      workers[r].running = true;
      if (o.on_spawn) o.on_spawn(r, workers[r].pid);
    }
  } catch (...) {
    stop_all(workers, std::chrono::milliseconds(100));
    throw;
  }

  int failed_rank = -1;
  std::string cause;
  bool cancelled = false;
  Clock::time_point cancel_deadline{}, victim_grace{};
  const auto timeout_ms = static_cast<std::uint64_t>(o.heartbeat_timeout_seconds * 1000);
  // A failure's weight: the rank that died or hung is the cause; ranks that then fail with a
  // communication error are its victims.
  auto weight = [&](int rank, bool died) {
    if (died) return 3;
    return board.read(rank).exit_code == static_cast<int>(ErrorCode::kCommunication) ? 1 : 2;
  };
  int failed_weight = 0;
  for (;;) {
    int alive = 0;
    for (int r = 0; r < o.world_size; ++r) {
      Worker& w = workers[r];
      if (!w.running) continue;
      if (waitpid(w.pid, &w.status, WNOHANG) == w.pid) {
        w.running = false;
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
      const RankStatus s = board.read(r);
      if (s.heartbeat_ms != 0 && s.state == RankState::kRunning && ProgressBoard::monotonic_ms() - s.heartbeat_ms > timeout_ms &&
          failed_weight < 3) {
        failed_rank = r;
        failed_weight = 3;
        cause = "stopped responding (no heartbeat for " + std::to_string(static_cast<int>(o.heartbeat_timeout_seconds)) + " s)";
      }
    }
    if (o.on_poll) o.on_poll(board);
    // A communication error is usually the echo of another rank's failure: look a moment longer for it.
    if (failed_weight == 1 && victim_grace == Clock::time_point{}) victim_grace = Clock::now() + std::chrono::milliseconds(600);
    if (failed_weight >= 2 || alive == 0 || (failed_weight == 1 && Clock::now() > victim_grace)) break;
    if (o.cancel && o.cancel->load() && !cancelled) {
      cancelled = true;
      board.request_cancel();
      cancel_deadline = Clock::now() + std::chrono::seconds(10);  // workers stop at the end of their step
    }
    if (cancelled && Clock::now() > cancel_deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  const bool clean_exit = failed_rank < 0 && !cancelled;
  if (!clean_exit) board.request_cancel();
  stop_all(workers, std::chrono::seconds(3));
  if (clean_exit) return result;

  // Leftovers of interrupted writes.
  for (const auto& out : o.output_paths)
    for (const auto& w : workers) {
      std::error_code ec;
      fs::remove_all(out + ".part-" + std::to_string(w.pid), ec);
    }
  if (cancelled && failed_rank < 0) {
    result.exit_code = static_cast<int>(ErrorCode::kCancelled);
    result.message = "cancelled";
    return result;
  }
  const RankStatus s = board.read(failed_rank);
  std::string message = "rank " + std::to_string(failed_rank) + " failed while " + phase_of(s) + ": ";
  message += !s.error.empty() ? s.error : cause;
  if (!s.error.empty() && cause.rfind("exited", 0) != 0) message += " (" + cause + ")";
  result.message = message + "; the other ranks were stopped";
  result.exit_code = s.exit_code > 0 ? s.exit_code : static_cast<int>(ErrorCode::kCommunication);
  return result;
}

}  // namespace wan

namespace wan {

std::vector<std::string> generate_arguments(const GenerationRequest& r) {
  std::vector<std::string> a = {"generate"};
  auto add = [&](const char* flag, const std::string& value) {
    if (!value.empty()) a.insert(a.end(), {flag, value});
  };
  auto num = [](double v) {
    std::ostringstream s;
    s.precision(17);
    s << v;
    return s.str();
  };
  add("--model", r.model.model_dir);
  add("--dit", r.model.dit);
  add("--t5", r.model.t5);
  add("--vae", r.model.vae);
  add("--tokenizer", r.model.tokenizer);
  add("--clip", r.model.clip);
  add("--image", r.image);
  add("--prompt", r.prompt);
  add("--negative", r.negative_prompt);
  add("--width", std::to_string(r.width));
  add("--height", std::to_string(r.height));
  add("--frames", std::to_string(r.frames));
  add("--steps", std::to_string(r.steps));
  add("--shift", num(r.shift));
  add("--guidance", num(r.guidance));
  add("--seed", std::to_string(r.seed));
  add("--sampler", r.sampler);
  add("--dtype", r.dtype);
  add("--device", r.device);
  if (r.t5_cpu) a.push_back("--t5-cpu");
  if (r.cpu_noise) a.push_back("--cpu-noise");
  add("--output", r.output);
  add("--frames-dir", r.frames_dir);
  add("--save-latent", r.save_latent);
  add("--decode-latent", r.decode_latent);
  add("--fps", std::to_string(r.fps));
  add("--crf", std::to_string(r.crf));
  return a;
}

std::string default_worker_path() {
  if (const char* p = std::getenv("WAN_WORKER")) return p;
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return (self.parent_path() / "wan-worker").string();
}

}  // namespace wan
