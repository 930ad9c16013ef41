#include "launch_command.h"

#include "core/runtime.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "pipeline/plan.h"
#include "pipeline/rank_hooks.h"
#include "wan/dist_config.h"
#include "wan/error.h"
#include "wan/launcher.h"
#include "weights/file_util.h"

namespace wan_cli {
namespace {

namespace fs = std::filesystem;
std::atomic<bool> g_interrupted{false};
extern "C" void on_sigint(int) { g_interrupted = true; }


// The generate flags the workers get: the user's own, minus the launcher's (the single list of
// generate flags stays in add_generate_command).
std::vector<std::string> worker_generate_args(const std::vector<std::string>& args) {
  static const std::vector<std::string> with_value = {"--world-size", "--dist-config", "--ulysses", "--ring",
                                                      "--sharding",   "--backend",     "--master-port", "--run-id"};
  static const std::vector<std::string> switches = {"--cfg-parallel", "--dit-fsdp", "--t5-fsdp"};
  std::vector<std::string> out = {"generate"};
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string name = args[i].substr(0, args[i].find('='));
    const bool inline_value = name.size() != args[i].size();
    if (std::find(switches.begin(), switches.end(), name) != switches.end()) continue;
    if (std::find(with_value.begin(), with_value.end(), name) != with_value.end()) {
      if (!inline_value) ++i;  // skip its value too
      continue;
    }
    out.push_back(args[i]);
  }
  return out;
}

// One line per rank whenever its phase or step changes.
class BoardPrinter {
 public:
  void operator()(const wan::ProgressBoard& board) {
    if (last_.size() != static_cast<std::size_t>(board.world_size())) last_.assign(board.world_size(), {-1, -1});
    if (peaks_.size() != static_cast<std::size_t>(board.world_size())) peaks_.assign(board.world_size(), 0);
    for (int r = 0; r < board.world_size(); ++r) {
      const wan::RankStatus s = board.read(r);
      peaks_[r] = std::max<std::uint64_t>(peaks_[r], s.peak_memory_bytes);
      if (s.phase == 0 || (last_[r].first == s.phase && last_[r].second == s.step)) continue;
      last_[r] = {s.phase, s.step};
      std::fprintf(stderr, "[rank %d] %s %d/%d  %.2f s/step  %.2f GiB\n", r, wan::phase_name(static_cast<wan::Phase>(s.phase)),
                   s.step, s.total, s.seconds_per_step, static_cast<double>(s.memory_bytes) / (1ull << 30));
    }
  }

  // Peak memory each rank reported (resident set on the CPU, allocator peak on a GPU).
  void print_peaks() const {
    for (std::size_t r = 0; r < peaks_.size(); ++r)
      std::fprintf(stderr, "[rank %zu] peak memory %.1f MiB\n", r, static_cast<double>(peaks_[r]) / (1 << 20));
  }

 private:
  std::vector<std::pair<int, int>> last_;
  std::vector<std::uint64_t> peaks_;
};

}  // namespace

void add_distributed_options(CLI::App* g, DistOptions& o) {
  const char* group = "Distributed (one wan-worker process per rank)";
  g->add_option("--world-size", o.world_size, "number of ranks (processes) on this machine")->group(group);
  g->add_option("--dist-config", o.config_file, "distributed config JSON (resources/presets/*.json); flags override it")->group(group);
  g->add_option("--ulysses", o.ulysses, "Ulysses (head) parallel size; enables context parallel")->group(group);
  g->add_option("--ring", o.ring, "ring attention size; enables context parallel")->group(group);
  g->add_flag("--cfg-parallel", o.cfg_parallel, "cond and uncond on two halves of the world")->group(group);
  g->add_flag("--dit-fsdp", o.dit_fsdp, "shard the DiT's weights across the ranks (one unit per block, as FSDP)")->group(group);
  g->add_flag("--t5-fsdp", o.t5_fsdp, "shard umT5's weights across the ranks (one unit per block, as FSDP)")->group(group);
  g->add_option("--sharding", o.sharding, "FULL_SHARD | SHARD_GRAD_OP | NO_SHARD")->group(group);
  g->add_option("--backend", o.backend, "gloo (CPU) | nccl (GPU); default gloo with --device cpu")->group(group);
  g->add_option("--master-port", o.master_port, "rendezvous port (default: a free one)")->group(group);
  g->add_option("--run-id", o.run_id, "name of the run's progress board (default: generated)")->group(group);
}

wan::DistConfig dist_config_from_options(const DistOptions& o, const std::string& device) {
  wan::DistConfig c;
  if (!o.config_file.empty()) c = wan::load_dist_config(o.config_file);
  if (o.world_size > 0) c.world_size = o.world_size;
  if (o.ulysses > 0) c.ulysses_size = o.ulysses;
  if (o.ring > 0) c.ring_size = o.ring;
  if (o.ulysses > 0 || o.ring > 0) c.use_context_parallel = true;
  if (o.cfg_parallel) c.cfg_parallel = true;
  if (o.dit_fsdp) c.dit_fsdp = true;
  if (o.t5_fsdp) c.t5_fsdp = true;
  c.use_fsdp = c.dit_fsdp || c.t5_fsdp;
  if (!o.sharding.empty()) c = wan::dist_config_from_json("{\"sharding_strategy\": \"" + o.sharding + "\"}", c);
  if (!o.backend.empty()) c = wan::dist_config_from_json("{\"backend\": \"" + o.backend + "\"}", c);
  else if (device == "cpu") c.backend = "gloo";
  return c;
}

int run_distributed_generate(GenerateOptions& g, const DistOptions& o, const std::vector<std::string>& generate_args) {
  if (!g.request.decode_latent.empty())
    throw wan::Error(wan::ErrorCode::kInvalidArgument, "--decode-latent runs in one process; drop --world-size and the distributed flags");
  wan::DistConfig c = dist_config_from_options(o, g.request.device);
  c.rank = 0;
  // GPU runs: as many GPUs as ranks on this machine (the launcher puts every rank here).
  wan::check_dist_config(c, wan::DistEnvironment{g.request.device == "cpu" ? -1 : wan::cuda_device_count(), 0});
  prepare_generate_request(g);
  if (!g.request.output.empty() || !g.request.frames_dir.empty() || !g.request.save_latent.empty()) {
    // Settings and folders are checked by every worker too; checking here fails before any process starts.
    wan::validate_settings(g.request);
  }

  const fs::path temp = fs::temp_directory_path() / ("wan-launch-" + std::to_string(getpid()));
  fs::create_directories(temp);
  struct Cleanup {
    fs::path dir;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } cleanup{temp};
  const std::string config_path = (temp / "dist.json").string();
  {
    const std::string text = wan::dist_config_to_json(c);
    wan::AtomicFileWriter w(config_path);
    w.write(text.data(), text.size());
    w.commit();
  }
  wan::LaunchOptions l;
  l.worker_path = wan::default_worker_path();
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  l.worker_args = {"--threads", std::to_string(std::max(1u, cores / static_cast<unsigned>(c.world_size))), "--dist-config", config_path};
  for (auto& a : worker_generate_args(generate_args)) l.worker_args.push_back(a);
  l.world_size = c.world_size;
  l.master_port = o.master_port;
  l.run_id = o.run_id;
  l.output_paths = {g.request.output, g.request.frames_dir, g.request.save_latent};
  l.cancel = &g_interrupted;
  BoardPrinter printer;
  l.on_poll = [&](const wan::ProgressBoard& b) { printer(b); };
  struct sigaction sa {}, old_int {}, old_term {};
  sa.sa_handler = on_sigint;
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  std::fprintf(stderr, "starting %d workers (%s, ulysses %d x ring %d%s)\n", c.world_size, c.backend.c_str(),
               c.context_parallel() ? c.ulysses_size : 1, c.context_parallel() ? c.ring_size : 1, c.cfg_parallel ? ", cfg parallel" : "");
  const wan::LaunchResult r = wan::launch_local(l);
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  if (r.exit_code == 0) printer.print_peaks();
  if (r.exit_code != 0) {
    // The sampling is never lost: rank 0 saved the latent before decoding.
    const std::string latent = !g.request.save_latent.empty() ? g.request.save_latent : wan::rescue_latent_path(g.request);
    std::string message = r.message;
    if (fs::exists(latent) && message.find(latent) == std::string::npos)
      message += "; the sampled latent is kept in " + latent + ": decode it with `wan generate --decode-latent " + latent +
                 " --model ... --output ...`";
    throw wan::Error(static_cast<wan::ErrorCode>(r.exit_code), message);
  }
  return 0;
}

}  // namespace wan_cli
