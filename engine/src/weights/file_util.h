// Small file helpers: whole-file text reads and atomic writes (temp name, then rename).
#pragma once

#include <cstddef>
#include <cstdio>
#include <string>

namespace wan {

// Throws wan::Error(kFileNotFound / kIo) naming the path.
std::string read_text_file(const std::string& path);

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
};

}  // namespace wan
