#include "core/memory_report.h"

#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "core/cpu_allocator.h"
#include "core/memory.h"

namespace wan {

// The bytes malloc and the large-block cache have handed out and not taken back (all arenas, mmapped
// chunks and live blocks), sampled every millisecond; take_peak() returns the peak since the last call.
class RankMemory::HeapSampler {
 public:
  HeapSampler() {
    thread_ = std::thread([this] {
      while (!stop_) {
        const struct mallinfo2 m = mallinfo2();
        const std::int64_t in_use = static_cast<std::int64_t>(m.uordblks + m.hblkhd) + cpu_block_stats().live_bytes;
        std::int64_t seen = peak_.load();
        while (in_use > seen && !peak_.compare_exchange_weak(seen, in_use)) {
        }
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

RankMemory::RankMemory(int rank) : rank_(rank) {
  if (std::getenv("WAN_MEMORY_REPORT")) heap_ = std::make_unique<HeapSampler>();
}

RankMemory::~RankMemory() = default;

void RankMemory::set_cuda_device(int index) { cuda_device_ = index; }

// GPU figures come from the CUDA allocator, which throws when the GPU is gone or was never there: the
// memory report is never the reason a run fails (finish() runs while an error is being reported).
std::int64_t RankMemory::phase_peak() const {
  try {
    return cuda_device_ >= 0 ? device_peak_bytes(cuda_device_) : peak_rss_bytes();
  } catch (const std::exception&) {
    return 0;
  }
}

std::uint64_t RankMemory::current_bytes() const {
  try {
    return static_cast<std::uint64_t>(cuda_device_ >= 0 ? device_current_bytes(cuda_device_) : current_rss_bytes());
  } catch (const std::exception&) {
    return 0;
  }
}

std::uint64_t RankMemory::peak_bytes() const { return static_cast<std::uint64_t>(std::max(run_peak_, phase_peak())); }

void RankMemory::on_progress(Phase phase, int step) {
  const int p = static_cast<int>(phase);
  if (p != phase_) close_phase(p);
  phase_ = p;
  if (std::getenv("WAN_MEMORY_TRACE")) {
    const struct mallinfo2 m = mallinfo2();
    std::fprintf(
        stderr, "[trace %d] phase %d step %d: malloc %zu MiB mmapped %zu MiB blocks live %lld cached %lld rss %lld\n",
        rank_, p, step, m.uordblks >> 20, m.hblkhd >> 20, static_cast<long long>(cpu_block_stats().live_bytes >> 20),
        static_cast<long long>(cpu_block_stats().cached_bytes >> 20),
        static_cast<long long>(current_rss_bytes() >> 20));
  }
}

void RankMemory::close_phase(int next) {
  const std::int64_t peak = phase_peak();
  run_peak_ = std::max(run_peak_, peak);
  if (phase_ > 0) phase_peaks_[phase_] = std::max(phase_peaks_[phase_], peak);
  if (heap_ && phase_ > 0) {
    heap_peaks_[phase_] = std::max(heap_peaks_[phase_], heap_->take_peak());
    block_peaks_[phase_] = std::max(block_peaks_[phase_], cpu_block_stats().peak_bytes);
    reset_cpu_block_peak();
  }
  if (next == phase_) return;
  try {
    if (cuda_device_ >= 0)
      reset_device_peak_bytes(cuda_device_);
    else
      reset_peak_rss();
  } catch (const std::exception&) {
  }
}

void RankMemory::finish() {
  close_phase(phase_);
  if (!std::getenv("WAN_MEMORY_REPORT")) return;
  auto mib = [](const std::map<int, std::int64_t>& m, int phase) {
    return std::to_string(m.count(phase) ? m.at(phase) >> 20 : 0);
  };
  std::string line = "[rank " + std::to_string(rank_) + "] memory peak by phase:";
  for (const auto& [phase, bytes] : phase_peaks_) {
    line += std::string(" ") + phase_name(static_cast<Phase>(phase)) + " " + std::to_string(bytes >> 20) + " MiB";
    if (heap_) line += " (in use " + mib(heap_peaks_, phase) + ", block cache " + mib(block_peaks_, phase) + ")";
    line += ";";
  }
  std::fprintf(stderr, "%s\n", line.c_str());
}

}  // namespace wan
