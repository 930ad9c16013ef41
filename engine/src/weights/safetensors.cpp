#include "weights/safetensors.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "wan/error.h"
#include "weights/checked_math.h"
#include "weights/file_util.h"

namespace wan {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

[[noreturn]] void corrupt(const std::string& path, const std::string& problem) {
  throw Error(ErrorCode::kCorruptFile, path + ": " + problem);
}

std::uint64_t read_u64_le(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  auto st = std::shared_ptr<SafetensorsFile>(new SafetensorsFile());
  st->file_ = MappedFile::open(path);
  const std::uint64_t file_bytes = st->file_->size_bytes();
  if (file_bytes < 8) corrupt(path, "file is truncated (" + std::to_string(file_bytes) + " bytes, no header)");
  const std::uint64_t header_bytes = read_u64_le(st->file_->data());
  if (header_bytes > kSafetensorsMaxHeaderBytes)
    corrupt(path, "header too large (" + std::to_string(header_bytes) + " bytes, limit " +
                      std::to_string(kSafetensorsMaxHeaderBytes) + "): not a safetensors file or corrupt");
  if (8 + header_bytes > file_bytes)
    corrupt(path, "file is truncated: header of " + std::to_string(header_bytes) + " bytes does not fit in " +
                      std::to_string(file_bytes) + " bytes");
  json header;
  try {
    header = json::parse(st->file_->data() + 8, st->file_->data() + 8 + header_bytes);
  } catch (const std::exception& e) {
    corrupt(path, std::string("header is not valid JSON (") + e.what() + ")");
  }
  if (!header.is_object()) corrupt(path, "header is not a JSON object");

  const std::uint64_t data_start = 8 + header_bytes;
  const std::uint64_t data_bytes = file_bytes - data_start;
  std::vector<std::pair<std::uint64_t, std::string>> spans;  // begin -> name, for the overlap check
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    if (name == "__metadata__") {
      if (!it->is_object()) corrupt(path, "__metadata__ is not an object");
      for (auto m = it->begin(); m != it->end(); ++m)
        if (m->is_string()) st->metadata_[m.key()] = m->get<std::string>();
      continue;
    }
    const json& e = *it;
    if (!e.is_object() || !e.contains("dtype") || !e.contains("shape") || !e.contains("data_offsets"))
      corrupt(path, "tensor '" + name + "' lacks dtype, shape or data_offsets");
    if (!e["dtype"].is_string()) corrupt(path, "tensor '" + name + "' has a non-string dtype");
    const std::string dtype_name = e["dtype"].get<std::string>();
    auto dtype = stored_dtype_from_safetensors(dtype_name);
    if (!dtype) corrupt(path, "tensor '" + name + "' has unknown dtype '" + dtype_name + "'");
    Entry entry;
    entry.info.dtype = *dtype;
    entry.info.file = path;
    std::uint64_t numel = 1;
    if (!e["shape"].is_array()) corrupt(path, "tensor '" + name + "' has a non-array shape");
    for (const json& d : e["shape"]) {
      if (!d.is_number_unsigned()) corrupt(path, "tensor '" + name + "' has a negative or non-integer dimension");
      const std::uint64_t dim = d.get<std::uint64_t>();
      if (dim != 0 && numel > (std::uint64_t(1) << 62) / dim)
        corrupt(path, "tensor '" + name + "' has an impossibly large shape");
      numel *= dim;
      entry.info.shape.push_back(static_cast<std::int64_t>(dim));
    }
    const json& off = e["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      corrupt(path, "tensor '" + name + "' has malformed data_offsets");
    const std::uint64_t begin = off[0].get<std::uint64_t>();
    const std::uint64_t end = off[1].get<std::uint64_t>();
    if (begin > end) corrupt(path, "tensor '" + name + "' has data_offsets with begin > end");
    if (end > data_bytes)
      corrupt(path, "tensor '" + name + "' data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                        ") out of bounds: the data section has " + std::to_string(data_bytes) +
                        " bytes (file truncated?)");
    // numel < 2^62 and an element of up to 8 bytes: the product can pass 2^64 (and wrap to "0 bytes").
    const auto bytes =
        checked_mul(static_cast<std::int64_t>(numel), static_cast<std::int64_t>(element_size_bytes(*dtype)));
    if (!bytes) corrupt(path, "tensor '" + name + "' has an impossibly large shape");
    const std::uint64_t expected = static_cast<std::uint64_t>(*bytes);
    if (expected != end - begin)
      corrupt(path, "tensor '" + name + "' shape x dtype is " + std::to_string(expected) +
                        " bytes but its data_offsets span " + std::to_string(end - begin) + " bytes");
    entry.begin = data_start + begin;
    entry.end = data_start + end;
    if (end > begin) spans.emplace_back(begin, name);
    st->entries_.emplace(name, std::move(entry));
    st->names_.push_back(name);
  }
  std::sort(spans.begin(), spans.end());
  for (std::size_t i = 1; i < spans.size(); ++i) {
    const Entry& prev = st->entries_.at(spans[i - 1].second);
    if (prev.end - data_start > spans[i].first)
      corrupt(path,
              "tensors '" + spans[i - 1].second + "' and '" + spans[i].second + "' have overlapping data_offsets");
  }
  // Keep file order (by offset) for names, which is how the writer laid them out.
  std::sort(st->names_.begin(), st->names_.end(), [&](const std::string& a, const std::string& b) {
    return st->entries_.at(a).begin < st->entries_.at(b).begin;
  });
  return st;
}

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) throw Error(ErrorCode::kModelMismatch, path() + ": no tensor named '" + name + "'");
  return it->second.info;
}

torch::Tensor SafetensorsFile::view(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) throw Error(ErrorCode::kModelMismatch, path() + ": no tensor named '" + name + "'");
  const Entry& e = it->second;
  auto keep_alive = file_;
  return torch::from_blob(
      file_->data() + e.begin, e.info.shape, [keep_alive](void*) {},
      torch::TensorOptions().dtype(to_scalar_type(e.info.dtype, path() + ": tensor '" + name + "'")));
}

void SafetensorsFile::release_pages_of(const std::string& name) const {
  const auto it = entries_.find(name);
  if (it != entries_.end()) file_->release_range(it->second.begin, it->second.end - it->second.begin);
}

std::shared_ptr<ShardedSafetensors> ShardedSafetensors::open(const std::string& index_path) {
  auto sh = std::shared_ptr<ShardedSafetensors>(new ShardedSafetensors());
  sh->path_ = index_path;
  json index;
  try {
    index = json::parse(read_text_file(index_path));
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(ErrorCode::kCorruptFile, index_path + ": not valid JSON (" + e.what() + ")");
  }
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
    throw Error(ErrorCode::kCorruptFile, index_path + ": has no \"weight_map\" object");
  const fs::path dir = fs::path(index_path).parent_path();
  std::map<std::string, std::size_t> shard_of_file;
  for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
    if (!it->is_string())
      throw Error(ErrorCode::kCorruptFile, index_path + ": weight_map entry '" + it.key() + "' is not a file name");
    const std::string file = it->get<std::string>();
    // A shard is a file of the index's own folder: a path (../, /etc/..., a sub-folder) would read
    // files the user never chose (and print their first bytes in an error).
    if (file.empty() || file == "." || file == ".." || file.find('/') != std::string::npos ||
        file.find('\0') != std::string::npos)
      throw Error(ErrorCode::kCorruptFile, index_path + ": weight_map entry '" + it.key() + "' names '" + file +
                                               "', not a file of the index's folder");
    auto found = shard_of_file.find(file);
    if (found == shard_of_file.end()) {
      const std::string shard_path = (dir / file).string();
      if (!fs::exists(shard_path))
        throw Error(ErrorCode::kFileNotFound, index_path + ": shard '" + file + "' is missing from the folder");
      sh->shards_.push_back(SafetensorsFile::open(shard_path));
      found = shard_of_file.emplace(file, sh->shards_.size() - 1).first;
    }
    if (!sh->shards_[found->second]->contains(it.key()))
      throw Error(ErrorCode::kCorruptFile,
                  index_path + ": tensor '" + it.key() + "' is listed in " + file + " but not stored there");
    sh->owner_[it.key()] = found->second;
    sh->names_.push_back(it.key());
  }
  return sh;
}

const TensorInfo& ShardedSafetensors::info(const std::string& name) const {
  auto it = owner_.find(name);
  if (it == owner_.end()) throw Error(ErrorCode::kModelMismatch, path_ + ": no tensor named '" + name + "'");
  return shards_[it->second]->info(name);
}

torch::Tensor ShardedSafetensors::view(const std::string& name) const {
  auto it = owner_.find(name);
  if (it == owner_.end()) throw Error(ErrorCode::kModelMismatch, path_ + ": no tensor named '" + name + "'");
  return shards_[it->second]->view(name);
}

void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> cpu;
  std::uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    torch::Tensor c = t.detach().to(torch::kCPU).contiguous();
    const StoredDType dtype = from_scalar_type(c.scalar_type());
    const std::uint64_t bytes = static_cast<std::uint64_t>(c.numel()) * element_size_bytes(dtype);
    header[name] = {
        {"dtype", safetensors_name(dtype)}, {"shape", c.sizes().vec()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    cpu.push_back(c);
  }
  std::string text = header.dump();
  while (text.size() % 8 != 0) text.push_back(' ');
  AtomicFileWriter out(path);
  std::uint8_t len[8];
  std::uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<std::uint8_t>(n >> (8 * i));
  out.write(len, 8);
  out.write(text.data(), text.size());
  for (const torch::Tensor& c : cpu) out.write(c.data_ptr(), c.numel() * c.element_size());
  out.commit();
}

}  // namespace wan
