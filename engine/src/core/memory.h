// Process memory figures for progress reports, sidecars and benchmarks (Linux /proc).
#pragma once
#include <cstdint>
#include <string>

namespace wan {

std::int64_t current_rss_bytes();
// High-water mark of the resident set (VmHWM) since start or the last reset_peak_rss().
std::int64_t peak_rss_bytes();
// Resets VmHWM to the current RSS (writes "5" to /proc/self/clear_refs); false where not allowed.
bool reset_peak_rss();

// Gives the heap's free pages back to the kernel (glibc malloc_trim). The engine keeps freed memory in
// the heap while it computes (runtime.cpp: page faults are slow), so between phases and sampling steps
// it hands back what the last one left, or the resident set would carry every earlier phase's holes.
// keep_blocks: keep the large-block cache (cpu_allocator.h) for the next sampling step; between phases
// it is handed back too.
void release_free_heap(bool keep_blocks = false);

// CUDA caching-allocator peak since the last reset (0 in builds without CUDA).
std::int64_t device_peak_bytes(int device_index);
void reset_device_peak_bytes(int device_index);
// CUDA caching-allocator bytes in use now (0 in builds without CUDA).
std::int64_t device_current_bytes(int device_index);

// What a new allocation could still get, for out-of-memory messages; -1 when unknown.
// Host: MemAvailable (/proc/meminfo), capped by the cgroup v2 limit left (memory.max - memory.current).
std::int64_t host_available_bytes();
// GPU: cudaMemGetInfo's free bytes plus what LibTorch's caching allocator holds unused (it frees that
// before it reports out of memory); -1 in builds without CUDA.
std::int64_t device_free_bytes(int device_index);

// For messages: "1.25 GiB", "300 MiB", "12 KiB", "40 bytes".
std::string format_bytes(std::int64_t bytes);

}  // namespace wan
