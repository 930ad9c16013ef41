// Minimal reader for the uncompressed ("stored") zip archives that torch.save writes, zip64 included.
// Works on a memory-mapped file: entries are byte ranges of the mapping, nothing is copied.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "weights/mapped_file.h"

namespace wan {

class ZipArchive {
 public:
  struct Entry {
    std::uint64_t data_offset = 0;  // absolute offset of the entry's bytes in the file
    std::uint64_t size_bytes = 0;
    std::uint32_t crc32 = 0;  // the CRC-32 the central directory records for the entry (APPNOTE 4.4.7)
  };
  // Throws wan::Error(kCorruptFile) naming the file for anything malformed or compressed.
  explicit ZipArchive(std::shared_ptr<MappedFile> file);

  const std::vector<std::string>& names() const { return names_; }
  const Entry* find(const std::string& name) const;
  const std::shared_ptr<MappedFile>& file() const { return file_; }

 private:
  std::shared_ptr<MappedFile> file_;
  std::vector<std::string> names_;
  std::unordered_map<std::string, Entry> entries_;
};

// True when the file starts with a zip local-file signature.
bool looks_like_zip(const MappedFile& file);

}  // namespace wan
