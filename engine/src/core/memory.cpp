#include "core/memory.h"

#include <malloc.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>

#include "core/cpu_allocator.h"

#if WAN_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime_api.h>
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

// One number from a cgroup v2 file of this process's group; -1 when absent or "max".
std::int64_t cgroup_value(const std::string& file) {
  std::ifstream group("/proc/self/cgroup");
  std::string line, path;
  while (std::getline(group, line))
    if (line.rfind("0::", 0) == 0) path = line.substr(3);
  std::ifstream in("/sys/fs/cgroup" + path + "/" + file);
  std::string value;
  if (!(in >> value) || value == "max") return -1;
  try {
    return std::stoll(value);
  } catch (const std::exception&) {
    return -1;
  }
}

}  // namespace

std::int64_t host_available_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  std::int64_t kb = -1, available = -1;
  std::string unit;
  while (in >> key >> kb) {
    std::getline(in, unit);
    if (key == "MemAvailable:") available = kb * 1024;
  }
  const std::int64_t limit = cgroup_value("memory.max"), used = cgroup_value("memory.current");
  if (limit > 0 && used >= 0) available = available < 0 ? limit - used : std::min(available, limit - used);
  return available < 0 ? -1 : std::max<std::int64_t>(0, available);
}

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
std::int64_t device_free_bytes(int device_index) {
  init_cuda();
  const c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device_index));
  std::size_t free = 0, total = 0;
  if (cudaMemGetInfo(&free, &total) != cudaSuccess) {
    (void)cudaGetLastError();  // clear the error so the next CUDA call does not report it
    return -1;
  }
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(device_index));
  const auto aggregate = static_cast<std::size_t>(c10::CachingAllocator::StatType::AGGREGATE);
  const std::int64_t unused = stats.reserved_bytes[aggregate].current - stats.allocated_bytes[aggregate].current;
  return static_cast<std::int64_t>(free) + std::max<std::int64_t>(0, unused);
}
#else
std::int64_t device_free_bytes(int) { return -1; }
std::int64_t device_peak_bytes(int) { return 0; }
void reset_device_peak_bytes(int) {}
std::int64_t device_current_bytes(int) { return 0; }
#endif

std::string format_bytes(std::int64_t bytes) {
  char buf[32];
  const double b = static_cast<double>(bytes);
  if (bytes >= (std::int64_t{1} << 30))
    std::snprintf(buf, sizeof(buf), "%.2f GiB", b / (1ull << 30));
  else if (bytes >= (std::int64_t{1} << 20))
    std::snprintf(buf, sizeof(buf), "%.0f MiB", b / (1ull << 20));
  else if (bytes >= 1024)
    std::snprintf(buf, sizeof(buf), "%.0f KiB", b / 1024);
  else
    std::snprintf(buf, sizeof(buf), "%lld bytes", static_cast<long long>(bytes));
  return buf;
}

}  // namespace wan
