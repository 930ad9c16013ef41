// A rank's memory by phase, for the progress board and for diagnostics. Each phase's high-water mark
// is kept on its own (the mark is reset when a phase ends): GPU ranks measure their GPU's caching
// allocator (what the estimator predicts), CPU ranks their resident set.
//
// Diagnostics, off unless asked (this unit alone knows them):
//   WAN_MEMORY_REPORT=1  at the end, one stderr line with each phase's peak, and beside it the bytes
//                        malloc and the large-block cache had handed out (sampled every millisecond by
//                        a thread of its own), which tells live data from kept or fragmented memory;
//   WAN_MEMORY_TRACE=1   a stderr line per progress event with malloc, block cache and resident set.
// Not thread-safe: the rank's own thread calls it.
#pragma once
#include <cstdint>
#include <map>
#include <memory>

#include "wan/generation.h"

namespace wan {

class RankMemory {
 public:
  explicit RankMemory(int rank);
  ~RankMemory();
  RankMemory(const RankMemory&) = delete;
  RankMemory& operator=(const RankMemory&) = delete;

  void set_cuda_device(int index);  // measure this GPU from now on (-1: the CPU)
  // A progress event of the rank: ends the phase when it changed.
  void on_progress(Phase phase, int step);
  std::uint64_t current_bytes() const;
  std::uint64_t peak_bytes() const;  // over the run so far
  void finish();                     // ends the last phase; prints WAN_MEMORY_REPORT's line

 private:
  class HeapSampler;
  std::int64_t phase_peak() const;
  void close_phase(int next);

  int rank_;
  int cuda_device_ = -1;
  int phase_ = 0;
  std::int64_t run_peak_ = 0;
  std::map<int, std::int64_t> phase_peaks_, heap_peaks_, block_peaks_;
  std::unique_ptr<HeapSampler> heap_;
};

}  // namespace wan
