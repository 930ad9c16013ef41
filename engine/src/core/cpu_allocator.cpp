#include "core/cpu_allocator.h"

#include <c10/core/CPUAllocator.h>
#include <c10/util/Exception.h>
#include <sys/mman.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

namespace wan {
namespace {

constexpr std::size_t kLargeBlock = std::size_t(1) << 20;  // below: malloc
constexpr std::size_t kGranule = std::size_t(2) << 20;     // block sizes are multiples (huge page size)
constexpr std::size_t kPage = 4096;                        // ... or, for long-lived tensors, of the page size

// LongLivedBlocks scopes open now (any thread).
std::atomic<int> g_long_lived{0};

class BlockCache {
 public:
  void* take(std::size_t n, std::size_t* size) {
    // Temporaries: sizes rounded to 2 MiB classes, and a cached block up to twice the size serves, so
    // the forward's recurring shapes share blocks (tighter fits measured worse: more blocks mapped).
    // Weights: rounded to pages and served only by a block at most an eighth larger, since they keep
    // what they get (the mid model's 1 MiB projections took 2 MiB blocks each: 204 MiB for 138).
    const bool tight = g_long_lived.load() > 0;
    const std::size_t g = tight ? kPage : kGranule;
    const std::size_t rounded = (n + g - 1) / g * g;
    const std::size_t fits = tight ? rounded + rounded / 8 : 2 * rounded;
    std::lock_guard<std::mutex> lock(mutex_);
    // The smallest cached block that fits, unless it is larger than `fits`.
    auto it = free_.lower_bound(rounded);
    if (it != free_.end() && it->first <= fits) {
      void* p = it->second;
      *size = it->first;
      free_.erase(it);
      stats_.cached_bytes -= static_cast<std::int64_t>(*size);
      owned_[p] = *size;
      stats_.live_bytes += static_cast<std::int64_t>(*size);
      return p;
    }
    void* p = map(rounded);
    if (!p) {  // out of address space or memory: give the cache back and try once more
      unmap_all_locked();
      p = map(rounded);
    }
    if (!p) return nullptr;
    *size = rounded;
    owned_[p] = rounded;
    stats_.live_bytes += static_cast<std::int64_t>(rounded);
    ++stats_.maps;
    stats_.peak_bytes = std::max(stats_.peak_bytes, stats_.live_bytes + stats_.cached_bytes);
    return p;
  }

  bool give_back(void* p) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = owned_.find(p);
    if (it == owned_.end()) return false;
    free_.emplace(it->second, p);
    stats_.live_bytes -= static_cast<std::int64_t>(it->second);
    stats_.cached_bytes += static_cast<std::int64_t>(it->second);
    owned_.erase(it);
    return true;
  }

  void release() {
    std::lock_guard<std::mutex> lock(mutex_);
    unmap_all_locked();
  }

  CpuBlockStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

  void reset_peak() {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.peak_bytes = stats_.live_bytes + stats_.cached_bytes;
  }

 private:
  static void* map(std::size_t size) {
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return nullptr;
#ifdef MADV_HUGEPAGE
    madvise(p, size, MADV_HUGEPAGE);  // fewer page faults on first touch, where THP is set to madvise
#endif
    return p;
  }
  void unmap_all_locked() {
    for (const auto& [size, p] : free_) munmap(p, size);
    free_.clear();
    stats_.cached_bytes = 0;
  }

  std::mutex mutex_;
  std::multimap<std::size_t, void*> free_;        // size -> block
  std::unordered_map<void*, std::size_t> owned_;  // live blocks
  CpuBlockStats stats_;
};

BlockCache& cache() {
  static BlockCache* c = new BlockCache;  // never destroyed: tensors may die after static destructors run
  return *c;
}

void give_back(void* p) { cache().give_back(p); }

// raw_allocate / raw_deallocate (some LibTorch kernels' scratch memory) free through raw_deleter():
// blocks go back to the cache, small allocations to the allocator that made them.
c10::DeleterFnPtr g_small_deleter = nullptr;
void free_any(void* p) {
  if (!cache().give_back(p) && g_small_deleter) g_small_deleter(p);
}

std::atomic<bool> g_fail_next{false};

class CachingCpuAllocator final : public c10::Allocator {
 public:
  explicit CachingCpuAllocator(c10::Allocator* small) : small_(small) { g_small_deleter = small->raw_deleter(); }
  c10::DataPtr allocate(size_t n) override { return allocate_impl(n); }
  // Raw allocations need a context equal to the data pointer: true of the blocks, and of LibTorch's
  // default CPU allocator, whose own raw deleter frees the small ones.
  c10::DeleterFnPtr raw_deleter() const override { return g_small_deleter ? &free_any : nullptr; }
  void copy_data(void* dest, const void* src, std::size_t count) const override { std::memcpy(dest, src, count); }

 private:
  c10::DataPtr allocate_impl(size_t n) const {
    // fail_next_cpu_allocation(): this one fails as a refused mapping does.
    const bool injected = g_fail_next.exchange(false, std::memory_order_relaxed);
    TORCH_CHECK_WITH(OutOfMemoryError, !injected, "CPU allocator: not enough memory for a tensor of ", n,
                     " bytes (injected by WAN_TEST_OOM)");
    if (n < kLargeBlock) return small_->allocate(n);
    std::size_t size = 0;
    void* p = cache().take(n, &size);
    TORCH_CHECK_WITH(OutOfMemoryError, p != nullptr, "CPU allocator: not enough memory for a tensor of ", n, " bytes");
    return c10::DataPtr(p, p, &give_back, c10::Device(c10::DeviceType::CPU));
  }
  c10::Allocator* small_;
};

bool g_installed = false;

}  // namespace

LongLivedBlocks::LongLivedBlocks() { ++g_long_lived; }
LongLivedBlocks::~LongLivedBlocks() { --g_long_lived; }

void install_cpu_block_cache() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* env = std::getenv("WAN_CPU_BLOCK_CACHE");
    if (env && std::string(env) == "0") return;
    static CachingCpuAllocator allocator(c10::GetCPUAllocator());
    c10::SetCPUAllocator(&allocator, /*priority=*/10);
    g_installed = true;
  });
}

bool cpu_block_cache_installed() { return g_installed; }
bool fail_next_cpu_allocation() {
  if (!g_installed) return false;
  g_fail_next = true;
  return true;
}
void release_cpu_block_cache() { cache().release(); }
CpuBlockStats cpu_block_stats() { return cache().stats(); }
void reset_cpu_block_peak() { cache().reset_peak(); }

}  // namespace wan
