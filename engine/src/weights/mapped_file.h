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
  // Drops the pages read so far from this process's resident set (MADV_DONTNEED): a model copied out
  // of the file should not count twice. The mapping stays valid; pages are read again when touched.
  void release_resident_pages() const;
  // The same for the whole pages inside [offset, offset + bytes) (one tensor, once it was copied out).
  void release_range(std::uint64_t offset, std::uint64_t bytes) const;

 private:
  MappedFile() = default;
  std::string path_;
  std::uint8_t* data_ = nullptr;
  std::size_t size_bytes_ = 0;
};

}  // namespace wan
