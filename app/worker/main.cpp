// `wan-worker`: one rank of a distributed generation. Started by Wan Studio's launcher, or directly by
// torchrun / srun / mpirun (the rank and the rendezvous come from the environment, see launch_env.h):
//   torchrun --nproc_per_node=2 build/bin/wan-worker --dist-config resources/presets/2-gpu.json \
//     generate --model DIR --prompt "..." --output out.mp4
// Every rank samples; rank 0 saves the latent, decodes and writes the outputs.
#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <atomic>
#include <map>
#include <random>
#include <thread>

#include <CLI/CLI.hpp>

#include "core/memory.h"
#include "core/runtime.h"
#include "dist/communicator.h"
#include "dist/launch_env.h"
#include "dist/parallel_dit.h"
#include "generate_command.h"
#include "pipeline/demo_model.h"
#include "dist/rank_runtime.h"
#include "model/layers.h"
#include "pipeline/latent_preview.h"
#include "pipeline/rank_hooks.h"
#include "progress_printer.h"
#include "wan/dist_config.h"
#include "core/cpu_allocator.h"
#include "wan/error.h"
#include "wan/progress_board.h"
#include "wan/version.h"

namespace {

// WAN_MEMORY_REPORT diagnostics: the bytes malloc and the large-block cache have handed out and not
// taken back (all arenas, mmapped chunks and live blocks: live tensors plus everything else), sampled
// every millisecond; its peak per phase, against the resident set's, tells live data from memory that is
// kept (the block cache's own peak, live + cached, is printed beside it) or fragmented.
class HeapSampler {
 public:
  HeapSampler() {
    thread_ = std::thread([this] {
      while (!stop_) {
        const struct mallinfo2 m = mallinfo2();
        const std::int64_t in_use = static_cast<std::int64_t>(m.uordblks + m.hblkhd) + wan::cpu_block_stats().live_bytes;
        std::int64_t seen = peak_.load();
        while (in_use > seen && !peak_.compare_exchange_weak(seen, in_use)) {}
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    });
  }
  ~HeapSampler() {
    stop_ = true;
    thread_.join();
  }
  std::int64_t take_peak() { return peak_.exchange(0); }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<std::int64_t> peak_{0};
  std::thread thread_;
};

// This rank's slot on the run's progress board (when started by wan's launcher): phase, step, speed,
// memory, errors, and a heartbeat from a thread so a stopped process is told from a busy one.
class BoardReporter {
 public:
  BoardReporter(const std::string& run_id, int rank) : rank_(rank) {
    if (run_id.empty()) return;
    board_ = std::make_unique<wan::ProgressBoard>(wan::ProgressBoard::open(run_id));
    status_.pid = static_cast<std::int32_t>(getpid());
    status_.state = wan::RankState::kRunning;
    board_->publish(rank_, status_);
    beat_ = std::thread([this] {
      while (!stop_) {
        board_->beat(rank_);
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
      }
    });
  }
  ~BoardReporter() {
    stop_ = true;
    if (beat_.joinable()) beat_.join();
  }
  void progress(const wan::ProgressEvent& e) {
    if (static_cast<std::int32_t>(e.phase) != status_.phase) close_phase(static_cast<std::int32_t>(e.phase));
    status_.phase = static_cast<std::int32_t>(e.phase);
    status_.step = e.step;
    status_.total = e.total;
    status_.seconds_per_step = e.seconds_per_step;
    // GPU ranks report their GPU's allocator (what the estimator predicts); CPU ranks their resident set.
    status_.memory_bytes = static_cast<std::uint64_t>(cuda_device_ >= 0 ? wan::device_current_bytes(cuda_device_) : wan::current_rss_bytes());
    status_.peak_memory_bytes = std::max(run_peak_, phase_peak());
    if (std::getenv("WAN_MEMORY_TRACE")) {
      const struct mallinfo2 m = mallinfo2();
      std::fprintf(stderr, "[trace %d] phase %d step %d: malloc %zu MiB mmapped %zu MiB blocks live %lld cached %lld rss %lld\n", rank_, (int)e.phase, e.step,
                   m.uordblks >> 20, m.hblkhd >> 20, (long long)(wan::cpu_block_stats().live_bytes >> 20), (long long)(wan::cpu_block_stats().cached_bytes >> 20), (long long)(wan::current_rss_bytes() >> 20));
    }
    if (!board_) return;
    board_->publish(rank_, status_);
    if (board_->cancel_requested()) throw wan::Error(wan::ErrorCode::kCancelled, "cancelled");
  }
  void set_cuda_device(int index) { cuda_device_ = index; }
  void preview(const wan::PreviewImage& image) {
    if (board_) board_->publish_preview(image);
  }
  void finish(wan::RankState state, int code, const std::string& error) {
    close_phase(status_.phase);
    if (std::getenv("WAN_MEMORY_REPORT")) print_phase_peaks();
    if (!board_) return;
    status_.state = state;
    status_.exit_code = code;
    status_.error = error;
    board_->publish(rank_, status_);
  }

 private:
  // The memory high-water mark of the phase now ending (resident set, or the GPU allocator's peak), kept per
  // phase; the mark is reset for the next one, so each phase's own peak is known (WAN_MEMORY_REPORT=1 prints them).
  std::int64_t phase_peak() const {
    return cuda_device_ >= 0 ? wan::device_peak_bytes(cuda_device_) : wan::peak_rss_bytes();
  }
  void close_phase(std::int32_t next) {
    const std::int64_t peak = phase_peak();
    run_peak_ = std::max(run_peak_, peak);
    if (status_.phase > 0) phase_peaks_[status_.phase] = std::max(phase_peaks_[status_.phase], peak);
    if (heap_ && status_.phase > 0) {
      heap_peaks_[status_.phase] = std::max(heap_peaks_[status_.phase], heap_->take_peak());
      block_peaks_[status_.phase] = std::max(block_peaks_[status_.phase], wan::cpu_block_stats().peak_bytes);
      wan::reset_cpu_block_peak();
    }
    if (next == status_.phase) return;
    if (cuda_device_ >= 0) wan::reset_device_peak_bytes(cuda_device_);
    else wan::reset_peak_rss();
  }
  void print_phase_peaks() const {
    std::string line = "[rank " + std::to_string(rank_) + "] memory peak by phase:";
    for (const auto& [phase, bytes] : phase_peaks_)
      line += std::string(" ") + wan::phase_name(static_cast<wan::Phase>(phase)) + " " + std::to_string(bytes >> 20) + " MiB" +
              (heap_ ? " (in use " + std::to_string(heap_peaks_.count(phase) ? heap_peaks_.at(phase) >> 20 : 0) + ", block cache " +
                           std::to_string(block_peaks_.count(phase) ? block_peaks_.at(phase) >> 20 : 0) + ")"
                     : "") +
              ";";
    std::fprintf(stderr, "%s\n", line.c_str());
  }

  int rank_;
  int cuda_device_ = -1;
  std::int64_t run_peak_ = 0;
  std::map<std::int32_t, std::int64_t> phase_peaks_, heap_peaks_, block_peaks_;
  std::unique_ptr<HeapSampler> heap_{std::getenv("WAN_MEMORY_REPORT") ? new HeapSampler : nullptr};
  std::unique_ptr<wan::ProgressBoard> board_;
  wan::RankStatus status_;
  std::atomic<bool> stop_{false};
  std::thread beat_;
};

int run_worker(const std::string& dist_config_file, wan_cli::GenerateOptions& g, BoardReporter& board) {
  const wan::WorkerEnv env = wan::worker_env_from_process();
  wan::DistConfig config;
  if (!dist_config_file.empty()) config = wan::load_dist_config(dist_config_file);
  if (!dist_config_file.empty() && config.world_size != env.world_size)
    throw wan::Error(wan::ErrorCode::kInvalidArgument, dist_config_file + " says world_size " + std::to_string(config.world_size) +
                                                           " but the launcher started " + std::to_string(env.world_size) + " ranks");
  config.world_size = env.world_size;
  config.rank = env.rank;
  if (g.request.device == "cpu") config.backend = "gloo";
  if (config.backend == "nccl" && !wan::nccl_available())
    throw wan::Error(wan::ErrorCode::kUnsupported, "backend nccl is not available in this build (no CUDA LibTorch with NCCL); "
                                                   "use backend gloo (set \"backend\": \"gloo\" in the config, and --device cpu)");
  // NCCL: each rank works on the GPU of its local rank.
  if (config.backend == "nccl" && (g.request.device == "auto" || g.request.device == "cuda"))
    g.request.device = "cuda:" + std::to_string(env.local_rank);
  wan::check_dist_config(config, wan::DistEnvironment{});
  wan::set_attention_mode(wan::parse_attention_mode(config.attention_mode));  // sdpa (fused) or math (reference)
  if (g.request.device.rfind("cuda", 0) == 0)
    board.set_cuda_device(g.request.device.size() > 5 ? std::atoi(g.request.device.c_str() + 5) : 0);

  if (env.master_addr == "127.0.0.1" || env.master_addr == "localhost") setenv("WAN_GLOO_HOST", "127.0.0.1", 0);
  wan::RendezvousOptions r;
  r.master_addr = env.master_addr;
  r.master_port = env.master_port;
  r.rank = env.rank;
  r.world_size = env.world_size;
  r.host_store = env.rank == 0 && !env.store_hosted;
  std::unique_ptr<wan::Communicator> world;
  if (config.backend == "nccl") world = wan::connect_nccl(r, env.local_rank);  // also for one rank: the same path
  else if (env.world_size == 1) world = wan::make_single_rank_communicator();
  else world = wan::connect_gloo(r);

  // Rank 0 prepares (demo model, random seed) and the others follow, so every rank runs the same request.
  g.request.dtype = wan::effective_dtype(config, g.request.dtype, g.request.device == "cpu");
  if (env.rank == 0) wan_cli::prepare_generate_request(g);
  world->barrier();
  if (env.rank != 0) wan_cli::prepare_generate_request(g);
  torch::Tensor seed = torch::tensor({static_cast<std::int64_t>(g.request.seed)}, torch::kInt64);
  if (env.rank == 0 && g.request.seed < 0) seed[0] = static_cast<std::int64_t>(std::random_device{}() & 0x7fffffff);
  world->broadcast(seed, 0);
  g.request.seed = seed[0].item<std::int64_t>();

  wan::RankRuntime runtime(*world, config);
  wan::RankHooks hooks = runtime.hooks(g.request.guidance, env.rank == 0);
  hooks.save_latent_before_decode = true;
  if (env.rank == 0) hooks.on_step = [&](int step, int total, const torch::Tensor& latent) { board.preview(wan::latent_preview(latent, step, total)); };
  wan_cli::ProgressPrinter printer(stderr);
  const wan::GenerationResult result = wan::generate_with_hooks(g.request, [&](const wan::ProgressEvent& e) {
    if (env.rank == 0 && env.run_id.empty()) printer(e);
    board.progress(e);
  }, hooks);
  printer.finish();
  if (env.rank == 0) wan_cli::print_generation_result(result, g.request);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"wan-worker: one rank of a distributed Wan2.1 generation (torchrun, srun, mpirun or wan's launcher)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", [] { return wan::build_info_text(wan::build_info()); });
  int threads = 0;
  std::string dist_config;
  app.add_option("--threads", threads, "CPU threads for LibTorch (default: all cores)");
  app.add_option("--dist-config", dist_config, "distributed config JSON (resources/presets/*.json); its world_size must match");
  wan_cli::GenerateOptions g;
  wan_cli::add_generate_command(app, g);
  CLI11_PARSE(app, argc, argv);
  int rank = 0;
  std::unique_ptr<BoardReporter> board;
  try {
    const wan::WorkerEnv env = wan::worker_env_from_process();
    rank = env.rank;
    board = std::make_unique<BoardReporter>(env.run_id, rank);
    wan::init_runtime(threads);
    const int code = run_worker(dist_config, g, *board);
    board->finish(wan::RankState::kDone, 0, "");
    return code;
  } catch (const wan::Error& e) {
    if (board) board->finish(e.code() == wan::ErrorCode::kCancelled ? wan::RankState::kCancelled : wan::RankState::kFailed,
                             static_cast<int>(e.code()), e.what());
    std::fprintf(stderr, "wan: error: rank %d: %s\n", rank, e.what());
    return static_cast<int>(e.code());
  } catch (const std::exception& e) {
    if (board) board->finish(wan::RankState::kFailed, static_cast<int>(wan::ErrorCode::kInternal), e.what());
    std::fprintf(stderr, "wan: internal error: rank %d: %s\n", rank, e.what());
    return static_cast<int>(wan::ErrorCode::kInternal);
  }
}
