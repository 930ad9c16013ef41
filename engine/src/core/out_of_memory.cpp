#include "core/out_of_memory.h"

#include <c10/util/Exception.h>
#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <new>
#include <regex>

#include "core/cpu_allocator.h"
#include "core/memory.h"

namespace wan {
namespace {

bool contains_any(const std::string& text, std::initializer_list<const char*> words) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  return std::any_of(words.begin(), words.end(), [&](const char* w) { return lower.find(w) != std::string::npos; });
}

// "Tried to allocate 2.00 GiB" (CUDA caching allocator), "N bytes" (CPU allocators).
std::int64_t requested_from_message(const std::string& text) {
  static const std::regex cuda(R"(allocate ([0-9.]+) (B|KiB|MiB|GiB|TiB))", std::regex::icase);
  static const std::regex bytes(R"(([0-9]+) bytes)");
  std::smatch m;
  if (std::regex_search(text, m, cuda)) {
    const std::string unit = m[2];
    double scale = 1;
    if (unit == "KiB") scale = 1024.0;
    if (unit == "MiB") scale = 1024.0 * 1024;
    if (unit == "GiB") scale = 1024.0 * 1024 * 1024;
    if (unit == "TiB") scale = 1024.0 * 1024 * 1024 * 1024;
    return static_cast<std::int64_t>(std::stod(m[1]) * scale);
  }
  if (std::regex_search(text, m, bytes)) return std::stoll(m[1]);
  return -1;
}

}  // namespace

AllocationFailure classify_allocation_failure(const std::exception& e) {
  AllocationFailure f;
  if (dynamic_cast<const std::bad_alloc*>(&e)) {
    f.out_of_memory = true;
    return f;
  }
  const std::string text = message_without_backtrace(e);
  if (dynamic_cast<const c10::OutOfMemoryError*>(&e) ||
      (dynamic_cast<const c10::Error*>(&e) &&
       contains_any(text, {"out of memory", "not enough memory", "can't allocate memory", "cannot allocate memory",
                           "cublas_status_alloc_failed", "cudnn_status_alloc_failed"}))) {
    f.out_of_memory = true;
    f.requested_bytes = requested_from_message(text);
  }
  return f;
}

std::string message_without_backtrace(const std::exception& e) {
  if (const auto* c10_error = dynamic_cast<const c10::Error*>(&e)) return c10_error->what_without_backtrace();
  return e.what();
}

Error to_engine_error(const std::exception& e) {
  if (const auto* error = dynamic_cast<const Error*>(&e)) return *error;
  // WAN_VERBOSE: the whole text with LibTorch's backtrace, as it is, on stderr (the Error's message is
  // one escaped line, at most kMaxMessageBytes).
  if (verbose_errors()) std::fprintf(stderr, "%s\n", e.what());
  const std::string text = verbose_errors() ? std::string(e.what()) : message_without_backtrace(e);
  if (classify_allocation_failure(e).out_of_memory) return Error(ErrorCode::kOutOfMemory, "out of memory: " + text);
  // A path the user gave that the file system refuses (a symlink loop, a folder without permission)
  // is the user's to fix, not an engine fault: the path and the system's reason.
  if (const auto* fs_error = dynamic_cast<const std::filesystem::filesystem_error*>(&e)) {
    std::string paths;
    for (const auto* p : {&fs_error->path1(), &fs_error->path2()})
      if (!p->empty()) paths += (paths.empty() ? "" : ", ") + p->string();
    return Error(ErrorCode::kIo,
                 "cannot use " + (paths.empty() ? std::string("a path") : paths) + ": " + fs_error->code().message());
  }
  return Error(ErrorCode::kInternal, text);
}

bool verbose_errors() {
  const char* v = std::getenv("WAN_VERBOSE");
  return v != nullptr && *v != '\0' && std::string(v) != "0";
}

void maybe_inject_out_of_memory(const char* phase, int rank, bool cuda_device, int device_index) {
  const char* env = std::getenv("WAN_TEST_OOM");
  if (env == nullptr || *env == '\0') return;
  const std::string spec(env);
  const std::size_t colon = spec.find(':');
  if (spec.substr(0, colon) != phase) return;
  if (colon != std::string::npos && std::atoi(spec.c_str() + colon + 1) != rank) return;
  if (cuda_device) {
    // Larger than what is free: the caching allocator's own out-of-memory error.
    const std::int64_t free = device_free_bytes(device_index);
    const std::int64_t ask = (free > 0 ? free : (std::int64_t{1} << 40)) + (std::int64_t{1} << 30);
    (void)torch::empty({ask}, torch::TensorOptions().dtype(torch::kUInt8).device(torch::kCUDA, device_index));
    return;
  }
  if (!fail_next_cpu_allocation()) throw std::bad_alloc();  // WAN_CPU_BLOCK_CACHE=0: no allocator hook
}

}  // namespace wan
