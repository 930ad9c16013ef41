// Read-only memory mapping of a whole file (RAII). Pages are private copy-on-write so a tensor that
// views them can never modify the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace wan {

class MappedFile {
 public:
  // Throws wan::Error (kFileNotFound, kIo) naming the path.
  static std::shared_ptr<MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::string& path() const { return path_; }
  std::uint8_t* data() const { return data_; }
  std::size_t size_bytes() const { return size_bytes_; }

 private:
  MappedFile() = default;
  std::string path_;
  std::uint8_t* data_ = nullptr;
  std::size_t size_bytes_ = 0;
};

}  // namespace wan
