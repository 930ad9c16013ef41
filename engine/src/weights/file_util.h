// Small file helpers: whole-file text reads and atomic writes (temp name, then rename).
#pragma once

#include <cstddef>
#include <cstdio>
#include <memory>
#include <string>

namespace wan {

// Throws wan::Error(kFileNotFound / kIo) naming the path.
std::string read_text_file(const std::string& path);

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

// Writes to "<path>.part-<pid>" and renames onto path in commit(); a writer destroyed without
// commit() removes its temp file, so a failed run never leaves a file that looks complete.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(std::string path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(const void* data, std::size_t bytes);
  std::size_t bytes_written() const { return bytes_written_; }
  void commit();
  const std::string& temp_path() const { return temp_path_; }

 private:
  std::string path_;
  std::string temp_path_;
  std::FILE* file_ = nullptr;
  std::size_t bytes_written_ = 0;
  std::unique_ptr<PartialFileRegistration> registration_;
};

}  // namespace wan
