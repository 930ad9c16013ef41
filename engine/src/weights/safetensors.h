// Safetensors: memory-mapped reader with strict header validation, sharded folders
// (*.safetensors.index.json), and a writer.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "weights/mapped_file.h"
#include "weights/tensor_source.h"

namespace wan {

// Largest JSON header accepted (the reference implementation uses the same 100 MB cap).
constexpr std::uint64_t kSafetensorsMaxHeaderBytes = 100ull * 1024 * 1024;

class SafetensorsFile final : public TensorSource {
 public:
  // Throws wan::Error(kCorruptFile) with "<path>: <problem>" for any malformed header.
  static std::shared_ptr<SafetensorsFile> open(const std::string& path);

  const std::string& path() const override { return file_->path(); }
  const std::vector<std::string>& names() const override { return names_; }
  bool contains(const std::string& name) const override { return entries_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const override;
  torch::Tensor view(const std::string& name) const override;
  void release_resident_pages() const override { file_->release_resident_pages(); }
  void release_pages_of(const std::string& name) const override;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  struct Entry {
    TensorInfo info;
    std::uint64_t begin = 0;  // absolute byte offset in the file
    std::uint64_t end = 0;
  };
  std::shared_ptr<MappedFile> file_;
  std::vector<std::string> names_;
  std::unordered_map<std::string, Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

// A model split over several safetensors files listed by an index json ({"weight_map": {name: file}}).
class ShardedSafetensors final : public TensorSource {
 public:
  static std::shared_ptr<ShardedSafetensors> open(const std::string& index_path);

  const std::string& path() const override { return path_; }
  const std::vector<std::string>& names() const override { return names_; }
  bool contains(const std::string& name) const override { return owner_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const override;
  torch::Tensor view(const std::string& name) const override;
  void release_resident_pages() const override {
    for (const auto& s : shards_) s->release_resident_pages();
  }
  void release_pages_of(const std::string& name) const override {
    const auto it = owner_.find(name);
    if (it != owner_.end()) shards_[it->second]->release_pages_of(name);
  }

 private:
  std::string path_;
  std::vector<std::string> names_;
  std::vector<std::shared_ptr<SafetensorsFile>> shards_;
  std::unordered_map<std::string, std::size_t> owner_;  // name -> shard index
};

// Writes tensors (any device/dtype; stored as they are) to path atomically (temp file + rename).
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace wan
