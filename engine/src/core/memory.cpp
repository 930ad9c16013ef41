#include "core/memory.h"

#include <malloc.h>

#include <fstream>
#include <string>

#include "core/cpu_allocator.h"

#if WAN_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace wan {
namespace {

std::int64_t status_field_kb(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::string prefix = std::string(key) + ":";
  while (std::getline(in, line))
    if (line.compare(0, prefix.size(), prefix) == 0) return std::stoll(line.substr(prefix.size()));
  return 0;
}

}  // namespace

std::int64_t current_rss_bytes() { return status_field_kb("VmRSS") * 1024; }
std::int64_t peak_rss_bytes() { return status_field_kb("VmHWM") * 1024; }

void release_free_heap(bool keep_blocks) {
  if (!keep_blocks) release_cpu_block_cache();
  malloc_trim(0);
}

bool reset_peak_rss() {
  std::ofstream out("/proc/self/clear_refs");
  if (!out) return false;
  out << "5";
  return static_cast<bool>(out.flush());
}

#if WAN_WITH_CUDA
namespace {
// The caching allocator's statistics exist once CUDA is initialised (getDeviceStats and resetPeakStats
// check the device index against it): before the first CUDA tensor they threw "did you call init?".
void init_cuda() { at::globalContext().lazyInitDevice(c10::DeviceType::CUDA); }
}  // namespace
std::int64_t device_peak_bytes(int device_index) {
  init_cuda();
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(device_index));
  return stats.allocated_bytes[static_cast<std::size_t>(c10::CachingAllocator::StatType::AGGREGATE)].peak;
}
void reset_device_peak_bytes(int device_index) {
  init_cuda();
  c10::cuda::CUDACachingAllocator::resetPeakStats(static_cast<c10::DeviceIndex>(device_index));
}
std::int64_t device_current_bytes(int device_index) {
  init_cuda();
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(device_index));
  return stats.allocated_bytes[static_cast<std::size_t>(c10::CachingAllocator::StatType::AGGREGATE)].current;
}
#else
std::int64_t device_peak_bytes(int) { return 0; }
void reset_device_peak_bytes(int) {}
std::int64_t device_current_bytes(int) { return 0; }
#endif

}  // namespace wan
