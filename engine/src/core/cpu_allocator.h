// LibTorch's CPU allocator for large tensors: blocks of at least 1 MiB are mapped on their own
// (rounded to 2 MiB, transparent huge pages asked for) and kept in a cache when freed, reused by later
// tensors of the same or a slightly smaller size. glibc's heap, which the engine otherwise keeps
// (runtime.cpp), fragmented under the sampling's temporaries: the same CPU run peaked 1 GiB apart
// from one run to the next (docs/MEMORY.md). Small tensors still come from malloc.
#pragma once
#include <cstdint>

namespace wan {

// Installs the allocator (once; later calls do nothing). WAN_CPU_BLOCK_CACHE=0 leaves LibTorch's own.
void install_cpu_block_cache();
bool cpu_block_cache_installed();

// Test hook (WAN_TEST_OOM, core/out_of_memory.h): the next CPU tensor allocation, of any size and on any
// thread, throws c10::OutOfMemoryError as a refused mapping does. False (and nothing armed) when the
// cache is not installed.
bool fail_next_cpu_allocation();

// Unmaps every cached free block (between phases: text, loading, sampling, decoding).
void release_cpu_block_cache();

// While one is alive (on any thread), large blocks are for long-lived tensors (model weights, FSDP
// shards): sized to the page rather than to 2 MiB and never given a cached block much larger than asked.
class LongLivedBlocks {
 public:
  LongLivedBlocks();
  ~LongLivedBlocks();
  LongLivedBlocks(const LongLivedBlocks&) = delete;
  LongLivedBlocks& operator=(const LongLivedBlocks&) = delete;
};

struct CpuBlockStats {
  std::int64_t live_bytes = 0;    // blocks held by tensors
  std::int64_t cached_bytes = 0;  // free blocks kept for reuse
  std::int64_t peak_bytes = 0;    // highest live + cached since the last reset
  std::int64_t maps = 0;          // blocks mapped so far (cache misses)
};
CpuBlockStats cpu_block_stats();
void reset_cpu_block_peak();

}  // namespace wan
