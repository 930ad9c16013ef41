#include "weights/file_util.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "wan/error.h"

namespace wan {

std::string read_text_file(const std::string& path, std::int64_t max_bytes) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below like any non-file.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    const int err = errno;
    throw Error(err == ENOENT ? ErrorCode::kFileNotFound : ErrorCode::kIo,
                path + ": cannot open (" + std::strerror(err) + ")");
  }
  struct Close {
    int fd;
    ~Close() { ::close(fd); }
  } close_fd{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw Error(ErrorCode::kIo, path + ": cannot stat (" + std::strerror(errno) + ")");
  if (S_ISDIR(st.st_mode)) throw Error(ErrorCode::kInvalidArgument, path + " is a folder, not a file");
  if (!S_ISREG(st.st_mode))
    throw Error(ErrorCode::kInvalidArgument,
                path + " is not a regular file (a pipe, device or socket): give the path of a file");
  if (st.st_size > max_bytes)
    throw Error(ErrorCode::kInvalidArgument, path + " is " + std::to_string(st.st_size) + " bytes, more than the " +
                                                 std::to_string(max_bytes) +
                                                 " this kind of file may have: is it the right file?");
  std::string text(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::read(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error(ErrorCode::kIo, path + ": cannot read (" + std::strerror(errno) + ")");
    if (n == 0) break;  // shrank while read
    done += static_cast<std::size_t>(n);
  }
  text.resize(done);
  return text;
}

bool something_at(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

namespace {

// Async-signal-safe list: fixed buffers, a slot is readable once `g_listed` is set.
constexpr int kPartialSlots = 16;
constexpr std::size_t kPartialPathMax = 4096;
char g_partial_paths[kPartialSlots][kPartialPathMax];
std::atomic<bool> g_slot_taken[kPartialSlots];
std::atomic<bool> g_listed[kPartialSlots];

char g_kept_latent[kPartialPathMax];
std::atomic<bool> g_kept_latent_set{false};

void remove_partial_files_and_die(int sig) {
  remove_partial_files_now();
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

}  // namespace

void note_kept_latent(const std::string& path) {
  g_kept_latent_set = false;
  if (path.empty() || path.size() >= kPartialPathMax) return;
  std::memcpy(g_kept_latent, path.c_str(), path.size() + 1);
  g_kept_latent_set = true;
}

const char* kept_latent_for_signal() { return g_kept_latent_set.load() ? g_kept_latent : nullptr; }

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
