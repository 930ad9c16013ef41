// Helpers shared by the libFuzzer targets: the loaders read files by path and map them, so an input
// becomes an anonymous in-memory file (memfd) reached through /proc/self/fd; and a guard that turns
// every wan::Error (an input refused with a message, the expected outcome) into a normal return while
// any other exception aborts, so libFuzzer reports it.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "wan/error.h"

namespace wan::fuzz {

// An input as a file: closed (and gone) when this goes out of scope.
class MemoryFile {
 public:
  MemoryFile(const std::uint8_t* data, std::size_t size) {
    fd_ = ::memfd_create("wan-fuzz", MFD_CLOEXEC);
    if (fd_ < 0) std::abort();
    std::size_t done = 0;
    while (done < size) {
      const ssize_t n = ::write(fd_, data + done, size - done);
      if (n <= 0) std::abort();
      done += static_cast<std::size_t>(n);
    }
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  ~MemoryFile() { ::close(fd_); }
  MemoryFile(const MemoryFile&) = delete;
  MemoryFile& operator=(const MemoryFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  std::string path_;
};

// Runs body; a wan::Error naming the input's defect is a refusal (fine). Anything else aborts, so
// libFuzzer records the input: another exception type, and the codes that mean the engine itself failed
// (kInternal: "internal error"; kOutOfMemory: an input's numbers reached an allocation unchecked).
template <typename Body>
void refuse_or_accept(Body&& body) {
  try {
    body();
  } catch (const wan::Error& e) {
    if (e.code() == wan::ErrorCode::kInternal || e.code() == wan::ErrorCode::kOutOfMemory) {
      std::fprintf(stderr, "fuzz: the input ended in %s, not a refusal: %s\n", wan::error_code_name(e.code()),
                   e.what());
      std::abort();
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz: an exception other than wan::Error escaped: %s\n", e.what());
    std::abort();
  }
}

}  // namespace wan::fuzz
