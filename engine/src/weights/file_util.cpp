#include "weights/file_util.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include "wan/error.h"

namespace wan {

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw Error(errno == ENOENT ? ErrorCode::kFileNotFound : ErrorCode::kIo,
                path + ": cannot open (" + std::strerror(errno) + ")");
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

namespace {

// Async-signal-safe list: fixed buffers, a slot is readable once `g_listed` is set.
constexpr int kPartialSlots = 16;
constexpr std::size_t kPartialPathMax = 4096;
char g_partial_paths[kPartialSlots][kPartialPathMax];
std::atomic<bool> g_slot_taken[kPartialSlots];
std::atomic<bool> g_listed[kPartialSlots];

void remove_partial_files_and_die(int sig) {
  remove_partial_files_now();
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

}  // namespace

void remove_partial_files_now() {
  for (int i = 0; i < kPartialSlots; ++i)
    if (g_listed[i].load()) ::unlink(g_partial_paths[i]);
}

PartialFileRegistration::PartialFileRegistration(const std::string& temp_path) {
  if (temp_path.size() >= kPartialPathMax) return;
  for (int i = 0; i < kPartialSlots; ++i) {
    bool expected = false;
    if (!g_slot_taken[i].compare_exchange_strong(expected, true)) continue;
    std::memcpy(g_partial_paths[i], temp_path.c_str(), temp_path.size() + 1);
    g_listed[i].store(true);
    slot_ = i;
    return;
  }
}

PartialFileRegistration::~PartialFileRegistration() {
  if (slot_ < 0) return;
  g_listed[slot_].store(false);
  g_slot_taken[slot_].store(false);
}

void remove_partial_files_on_termination() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction action {};
    action.sa_handler = &remove_partial_files_and_die;
    sigemptyset(&action.sa_mask);
    for (int sig : {SIGTERM, SIGHUP, SIGINT}) sigaction(sig, &action, nullptr);
  });
}

AtomicFileWriter::AtomicFileWriter(std::string path) : path_(std::move(path)) {
  temp_path_ = path_ + ".part-" + std::to_string(::getpid());
  registration_ = std::make_unique<PartialFileRegistration>(temp_path_);
  file_ = std::fopen(temp_path_.c_str(), "wb");
  if (file_ == nullptr) throw Error(ErrorCode::kIo, path_ + ": cannot create (" + std::strerror(errno) + ")");
}

AtomicFileWriter::~AtomicFileWriter() {
  if (file_ != nullptr) {
    std::fclose(file_);
    std::remove(temp_path_.c_str());
  }
}

void AtomicFileWriter::write(const void* data, std::size_t bytes) {
  if (bytes == 0) return;
  if (std::fwrite(data, 1, bytes, file_) != bytes)
    throw Error(ErrorCode::kIo, path_ + ": write failed (" + std::strerror(errno) + ")");
  bytes_written_ += bytes;
}

void AtomicFileWriter::commit() { finish().commit(); }

PendingRename AtomicFileWriter::finish() {
  if (std::fflush(file_) != 0 || ::fsync(::fileno(file_)) != 0) {
    throw Error(ErrorCode::kIo, path_ + ": flush failed (" + std::strerror(errno) + ")");
  }
  PendingRename pending(temp_path_, path_);  // takes over the temp file before the writer lets it go
  std::fclose(file_);
  file_ = nullptr;
  return pending;
}

PendingRename::PendingRename(std::string temp_path, std::string path)
    : temp_path_(std::move(temp_path)), path_(std::move(path)) {
  registration_ = std::make_unique<PartialFileRegistration>(temp_path_);
}

PendingRename::PendingRename(PendingRename&& other) noexcept
    : temp_path_(std::move(other.temp_path_)),
      path_(std::move(other.path_)),
      pending_(other.pending_),
      registration_(std::move(other.registration_)) {
  other.pending_ = false;
}

PendingRename::~PendingRename() {
  if (!pending_) return;
  std::error_code ec;
  std::filesystem::remove_all(temp_path_, ec);
}

void PendingRename::commit() {
  if (!pending_) return;
  pending_ = false;
  if (std::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    std::error_code ec;
    std::filesystem::remove_all(temp_path_, ec);
    throw Error(ErrorCode::kIo, path_ + ": cannot rename the finished output into place (" + std::strerror(err) + ")");
  }
}

}  // namespace wan
