#include "generate_command.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "pipeline/demo_model.h"
#include "pipeline/plan.h"
#include "progress_printer.h"
#include "wan/error.h"
#include "wan/launcher.h"
#include "wan/rank.h"
#include "weights/file_util.h"
#include "weights/safetensors.h"

namespace wan_cli {
namespace {

// The first SIGINT / SIGTERM / SIGHUP cancels the run at the end of the current step; a second one ends
// it at once. With workers, the launcher then stops them (g_stop_now); in a run of one process the
// handler itself removes the half-written files and exits with the cancelled code.
std::atomic<bool> g_interrupted{false};
std::atomic<bool> g_stop_now{false};
std::atomic<bool> g_exit_on_second{false};
extern "C" void on_interrupt(int) {
  if (!g_interrupted.exchange(true)) return;
  g_stop_now = true;
  if (!g_exit_on_second.load()) return;
  wan::remove_partial_files_now();
  // write(2) only: the handler runs inside whatever the run was doing.
  const auto say = [](const char* text) {
    const ssize_t ignored = ::write(STDERR_FILENO, text, std::strlen(text));
    (void)ignored;
  };
  say("wan: error: cancelled (second interrupt: stopped at once");
  if (const char* kept = wan::kept_latent_for_signal()) {
    say("; the sampled latent is kept in ");
    say(kept);
  }
  say(")\n");
  ::_exit(static_cast<int>(wan::ErrorCode::kCancelled));
}

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

// SIGINT and SIGTERM set g_interrupted while it lives (the run then stops at the end of a step). A
// signal this process was started with ignored stays ignored, as a shell's background job (`wan ... &`
// in a script ignores SIGINT) or `nohup` (SIGHUP) expect.
class InterruptGuard {
 public:
  InterruptGuard() {
    struct sigaction sa {};
    sa.sa_handler = on_interrupt;
    handle(SIGINT, sa, &old_int_);
    handle(SIGTERM, sa, &old_term_);
    handle(SIGHUP, sa, &old_hup_);  // the terminal closed: stop the run cleanly too
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;  // stderr piped into `head`: the run goes on, its lines are dropped
    sigaction(SIGPIPE, &ignore, &old_pipe_);
  }
  ~InterruptGuard() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
    sigaction(SIGHUP, &old_hup_, nullptr);
    sigaction(SIGPIPE, &old_pipe_, nullptr);
  }

 private:
  static void handle(int sig, const struct sigaction& sa, struct sigaction* old) {
    sigaction(sig, nullptr, old);
    if (old->sa_handler != SIG_IGN) sigaction(sig, &sa, nullptr);
  }
  struct sigaction old_hup_ {
  }, old_pipe_{};
  struct sigaction old_int_ {
  }, old_term_{};
};

// What rank 0 wrote, from its sidecar (the launched ranks print to the board, not to this terminal).
void print_launched_result(const wan::GenerationRequest& r) {
  namespace fs = std::filesystem;
  const std::string sidecar = !r.output.empty()       ? fs::path(r.output).replace_extension(".json").string()
                              : !r.frames_dir.empty() ? r.frames_dir + ".json"
                                                      : "";
  std::int64_t seed = r.seed;
  std::string sampling;  // rank 0's forwards, as one process prints them
  try {
    if (!sidecar.empty()) {
      const std::string text = wan::read_text_file(sidecar);
      seed = wan::job_from_sidecar(text).request.seed;
      const nlohmann::json j = nlohmann::json::parse(text);
      if (j.contains("sampling") && j["sampling"].is_object()) {
        const auto& s = j["sampling"];
        sampling = "rank 0 ran " + std::to_string(s.value("dit_forwards", 0)) + " DiT forwards";
        if (s.value("dit_forwards_cached", 0) > 0)
          sampling +=
              ", " + std::to_string(s.value("dit_forwards_cached", 0)) + " of them with the blocks from the cache";
      }
    } else if (!r.save_latent.empty())  // a latent alone: its metadata holds the settings
      seed = wan::job_from_sidecar(wan::SafetensorsFile::open(r.save_latent)->metadata().at("settings")).request.seed;
  } catch (const std::exception&) {
  }
  if (!r.output.empty()) std::printf("wrote %s (seed %lld)\n", r.output.c_str(), static_cast<long long>(seed));
  if (!r.frames_dir.empty()) std::printf("wrote PNG frames into %s\n", r.frames_dir.c_str());
  if (!r.save_latent.empty())
    std::printf("wrote latent %s (seed %lld)\n", r.save_latent.c_str(), static_cast<long long>(seed));
  if (!sidecar.empty()) std::printf("settings in %s\n", sidecar.c_str());
  if (!sampling.empty()) std::printf("%s\n", sampling.c_str());
}

int run_launched(const wan::Job& job, const DistFlags& d) {
  wan::LaunchOptions l;
  l.master_port = d.master_port.value_or(0);
  l.cancel = &g_interrupted;
  l.stop_now = &g_stop_now;
  BoardPrinter printer;
  l.on_poll = [&](const wan::ProgressBoard& b) { printer(b); };
  const wan::DistConfig& c = job.config;
  l.on_spawn = [&](int rank, int) {  // after the launcher checked the job: say what starts
    if (rank != 0) return;
    std::fprintf(stderr, "starting %d worker%s (%s, ulysses %d x ring %d%s)\n", c.world_size,
                 c.world_size == 1 ? "" : "s", wan::backend_name(c.backend), c.context_parallel() ? c.ulysses_size : 1,
                 c.context_parallel() ? c.ring_size : 1, c.cfg_parallel ? ", cfg parallel" : "");
  };
  // What every rank would refuse at once (the files' headers, a setting the model does not allow) is
  // refused here, before any worker starts.
  // A run that names no model runs the demo model (made by the launcher when it is missing).
  wan::GenerationRequest checked = job.request;
  checked.model = wan::model_files_or_demo(checked);
  if (!checked.model.model_dir.empty() || !checked.model.dit.empty())
    (void)wan::make_plan(checked, job.config, /*require_output=*/true);
  g_exit_on_second = false;  // the launcher stops its workers (g_stop_now), so their files are removed
  const wan::LaunchResult r = wan::launch_job(job, l);
  if (r.exit_code != 0) throw wan::Error(static_cast<wan::ErrorCode>(r.exit_code), r.message);
  printer.print_peaks();
  print_launched_result(job.request);
  return 0;
}

// --write-job: a job file a cluster launcher's ranks read, with absolute paths; never the output's
// sidecar (rank 0 writes that and would overwrite the job).
int write_job(const wan::Job& given, const std::string& path) {
  namespace fs = std::filesystem;
  const wan::Job job = with_absolute_paths(given);
  const fs::path target = fs::weakly_canonical(fs::absolute(path));
  std::error_code ec;
  if (fs::exists(target, ec)) {  // only an earlier job file is replaced: never a picture, config or video
    bool job_file = false;
    try {
      wan::load_job(target.string());
      job_file = true;
    } catch (const wan::Error&) {
    }
    if (!job_file)
      throw wan::Error(wan::ErrorCode::kInvalidArgument,
                       "--write-job " + path + " exists and is not a job file; pick another name for the job");
  }
  for (const std::string& out : {job.request.output, job.request.frames_dir})
    if (!out.empty()) {
      const fs::path sidecar =
          out == job.request.output ? fs::path(out).replace_extension(".json") : fs::path(out + ".json");
      if (fs::weakly_canonical(fs::absolute(sidecar)) == target)
        throw wan::Error(wan::ErrorCode::kInvalidArgument,
                         "--write-job " + path + " is where rank 0 writes the sidecar of " + out +
                             ": name the job file differently (e.g. " + fs::path(path).stem().string() + ".job.json)");
    }
  // What the ranks would refuse at once is refused here: the files' headers and the layout against the
  // model's heads (as `wan generate` and `wan estimate` check before starting). Model files that are not
  // here (a cluster's paths) cannot be checked: said, and the job is written.
  try {
    const wan::RunPlan plan = wan::make_plan(job.request, job.config, /*require_output=*/false);
    wan::check_dist_config(job.config, wan::DistEnvironment{-1, static_cast<int>(plan.dit.num_heads)});
  } catch (const wan::Error& e) {
    if (e.code() != wan::ErrorCode::kFileNotFound) throw;
    std::printf("note: not checked against the model files (%s); the ranks check them when they start\n", e.what());
  }
  wan::save_job(target.string(), job);
  std::printf("wrote %s: run it with `torchrun --nproc_per_node=%d wan-worker --job %s` (or srun, mpirun)\n",
              target.c_str(), job.config.world_size, target.c_str());
  return 0;
}

}  // namespace

int run_generate_command(const JobFlags& flags) {
  // From here on Ctrl-C (SIGINT, SIGTERM, SIGHUP) cancels at the end of a step, a second one at once:
  // exit 9 "cancelled" at any moment.
  g_exit_on_second = true;
  InterruptGuard interrupts;
  const wan::Job job = job_from_flags(flags);
  if (g_interrupted) throw wan::Error(wan::ErrorCode::kCancelled, "cancelled");
  if (!flags.write_job.empty()) return write_job(job, flags.write_job);
  if (flags.dist.distributed()) return run_launched(job, flags.dist);
  ConsoleReporter console(stderr, &g_interrupted);  // Ctrl-C: cancelled at the end of the step
  wan::run_rank(job, wan::WorkerEnv{}, console);    // a world of one that nobody launched
  return 0;
}

}  // namespace wan_cli
