// Small file helpers: whole-file text reads and atomic writes (temp name, then rename).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

namespace wan {

// The cap for JSON files (config.json, --dist-config, job files, sidecars, sharded indexes), the
// default: nlohmann's tree takes about 45 times the text's size, so 16 MiB stays under 1 GiB parsed;
// the largest such file in use (a 14B model's index) is 100 KiB.
constexpr std::int64_t kMaxJsonFileBytes = std::int64_t{16} << 20;
// The cap for tokenizer files (umT5's tokenizer.json is 16.8 MB, spiece.model 4.5 MB).
constexpr std::int64_t kMaxTextFileBytes = std::int64_t{256} << 20;
// The whole of a small file. Only a regular file (after symlinks) is read: a folder, FIFO, device or
// socket is refused without blocking, as is a file larger than max_bytes. Throws wan::Error:
// kFileNotFound (no such path), kInvalidArgument (not a regular file, too large), kIo (no permission,
// read failure); each names the path.
std::string read_text_file(const std::string& path, std::int64_t max_bytes = kMaxJsonFileBytes);

// The latent a sampling run has kept (for the signal handler's last line: a second Ctrl-C while
// decoding names it). note_kept_latent("") forgets it (the run finished or removed it).
// kept_latent_for_signal() is async-signal-safe; nullptr when none.
void note_kept_latent(const std::string& path);
const char* kept_latent_for_signal();

// True when anything is at `path`, a dangling symbolic link included (std::filesystem::exists follows
// links, so a link to nowhere reads as free and a run would replace it). Output checks use this.
bool something_at(const std::string& path);

// A file being written under a temporary name ("<path>.part-<pid>"), listed for the handler that
// remove_partial_files_on_termination() installs: a rank stopped by a signal (the launcher's SIGTERM,
// torchrun's, or the launcher's death through PR_SET_PDEATHSIG) removes it before it dies instead of
// leaving it beside the outputs. At most 16 at a time (further ones are simply not listed).
class PartialFileRegistration {
 public:
  explicit PartialFileRegistration(const std::string& temp_path);
  ~PartialFileRegistration();
  PartialFileRegistration(const PartialFileRegistration&) = delete;
  PartialFileRegistration& operator=(const PartialFileRegistration&) = delete;

 private:
  int slot_ = -1;
};

// Installs handlers for SIGTERM, SIGHUP and SIGINT (once) that unlink every listed partial file, then
// end the process by the same signal (its exit status is unchanged). For worker processes; the `wan`
// CLI handles those signals itself (a cancel at the end of the step).
void remove_partial_files_on_termination();

// Unlinks every listed partial file now. Async-signal-safe: for a signal handler that ends the process
// itself (the CLI's second Ctrl-C).
void remove_partial_files_now();

// A finished output under its temporary name ("<path>.part-<pid>", a file or a folder), renamed onto
// its path by commit(); destroyed uncommitted, it removes the temporary. A run holds each of its outputs
// this way until every one is written, then renames them together: outputs come only from a run that
// succeeded, and a user's earlier file under the same name (--overwrite) is replaced only then.
class PendingRename {
 public:
  PendingRename(std::string temp_path, std::string path);
  PendingRename(PendingRename&& other) noexcept;
  PendingRename& operator=(PendingRename&&) = delete;
  PendingRename(const PendingRename&) = delete;
  ~PendingRename();
  // Throws wan::Error(kIo) naming the path when the rename fails (the temporary is then removed).
  void commit();
  const std::string& path() const { return path_; }

 private:
  std::string temp_path_, path_;
  bool pending_ = true;
  std::unique_ptr<PartialFileRegistration> registration_;
};

// Writes to "<path>.part-<pid>" and renames onto path in commit() (or hands the rename on: finish());
// a writer destroyed without either removes its temp file, so a failed run never leaves a file that
// looks complete.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(std::string path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(const void* data, std::size_t bytes);
  std::size_t bytes_written() const { return bytes_written_; }
  void commit();
  // Flushed and closed, not yet in place: the caller renames it (with its other outputs).
  PendingRename finish();
  const std::string& temp_path() const { return temp_path_; }

 private:
  std::string path_;
  std::string temp_path_;
  std::FILE* file_ = nullptr;
  std::size_t bytes_written_ = 0;
  std::unique_ptr<PartialFileRegistration> registration_;
};

}  // namespace wan
