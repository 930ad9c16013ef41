// torch.save zip archives (.pth / .pt) holding a state_dict: read through the restricted unpickler,
// tensors view the memory-mapped storages (never twice the file in memory); and a writer.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "weights/tensor_source.h"
#include "weights/zip_archive.h"

namespace wan {

class PthFile final : public TensorSource {
 public:
  // Throws wan::Error (kCorruptFile, kUnsupported) with "<path>: <problem>". verify_crc: the records
  // other than tensor storages (data.pkl, version, byteorder: a few KiB) must match the CRC-32 the zip
  // records, so a damaged download is named as such before its pickle is read. Storages are not
  // checksummed (they are GBs, read once into the model; safetensors files carry no checksum at all).
  // The fuzz harness turns it off so that mutations reach the unpickler.
  static std::shared_ptr<PthFile> open(const std::string& path, bool verify_crc = true);

  const std::string& path() const override { return zip_->file()->path(); }
  const std::vector<std::string>& names() const override { return names_; }
  bool contains(const std::string& name) const override { return entries_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const override;
  torch::Tensor view(const std::string& name) const override;
  void release_resident_pages() const override { zip_->file()->release_resident_pages(); }
  void release_pages_of(const std::string& name) const override;

 private:
  struct Entry {
    TensorInfo info;
    std::vector<std::int64_t> stride;
    std::uint64_t data_offset = 0;  // absolute offset of the first element
  };
  std::unique_ptr<ZipArchive> zip_;
  std::vector<std::string> names_;
  std::unordered_map<std::string, Entry> entries_;
};

// Writes a state_dict the way torch.save does (zip, pickle protocol 2, one storage per tensor,
// 64-byte aligned), atomically. The archive folder is the file's stem, as torch names it.
// Limit: archives up to 4 GiB (no zip64 on the writing side).
void write_pth(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors);

// The archive layer of write_pth: stored (uncompressed) entries, each 64-byte aligned, in this order,
// atomically. Tests use it to build archives whose pickle says what a hostile file would.
void write_zip_entries(const std::string& path, const std::vector<std::pair<std::string, std::string>>& entries);

}  // namespace wan
