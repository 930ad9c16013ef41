// GGUF files (ggml's container: ggml/docs/gguf.md, versions 2 and 3), as the Wan GGUF quantizations in
// circulation are written (city96's ComfyUI-GGUF: tools/convert.py and its llama.cpp quantize patch):
//
//   "GGUF" | version u32 | tensor_count u64 | kv_count u64
//   kv_count x (key string, value type u32, value)          strings: u64 length + bytes (no NUL)
//   tensor_count x (name string, n_dims u32, dims u64[n_dims] (ne0 first: innermost), ggml type u32,
//                   offset u64 (from the data section, a multiple of the alignment))
//   padding to general.alignment (default 32), then the data section
//
// Read with the bounds checks of the safetensors reader: every count, length, dimension, offset and
// byte size is checked against the file before it is used (checked arithmetic, no allocation sized by
// the file beyond the file's own size), the alignment must be a power of two, names and keys unique,
// nested arrays are refused. Any defect is one wan::Error(kCorruptFile) naming the file and the field.
//
// Tensors: a GGUF dims list is the LibTorch shape reversed. ComfyUI-GGUF's convention for tensors that
// ggml cannot hold as they are (more than four dimensions, or a last dimension that is not a multiple of
// the block size) is honoured: the data is stored flattened and the metadata key
// `comfy.gguf.orig_shape.<tensor name>` (an integer array) gives the LibTorch shape, which must hold the
// same number of values. Files written by gguf-py with five or more dims are read as they are.
//
// view(): F32 views the mapped file (no copy); F16, BF16 and the quantized types return a new float32
// tensor, dequantized from the format's definition (weights/ggml_blocks.h). info().dtype is kF32 for
// all of them (what view() returns); stored_type() says what the file holds.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "weights/ggml_blocks.h"
#include "weights/mapped_file.h"
#include "weights/tensor_source.h"

namespace wan {

class GgufFile final : public TensorSource {
 public:
  // Throws wan::Error(kCorruptFile) naming the file for a malformed header, kUnsupported for a version
  // other than 2 or 3 and for a tensor of a type this engine does not read (named, with the types it
  // reads).
  static std::shared_ptr<GgufFile> open(const std::string& path);

  const std::string& path() const override { return file_->path(); }
  const std::vector<std::string>& names() const override { return names_; }
  bool contains(const std::string& name) const override { return entries_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const override;
  torch::Tensor view(const std::string& name) const override;
  void release_resident_pages() const override { file_->release_resident_pages(); }
  void release_pages_of(const std::string& name) const override;

  // What the file stores for `name` (throws kModelMismatch for an unknown name).
  GgmlType stored_type(const std::string& name) const;
  // ggml's name of it ("Q4_K") and its bytes in the file.
  std::string stored_type_name(const std::string& name) const override;
  std::int64_t stored_bytes(const std::string& name) const override;
  // general.architecture ("wan" in ComfyUI-GGUF's Wan files); empty when absent.
  const std::string& architecture() const { return architecture_; }
  // String-valued metadata (other value types are checked and skipped).
  const std::map<std::string, std::string>& string_metadata() const { return strings_; }

 private:
  struct Entry {
    TensorInfo info;  // the LibTorch shape, dtype kF32
    GgmlType type = GgmlType::kF32;
    std::uint64_t begin = 0;  // absolute byte offset in the file
    std::uint64_t bytes = 0;
  };
  const Entry& entry(const std::string& name) const;  // throws kModelMismatch for an unknown name
  std::shared_ptr<MappedFile> file_;
  std::vector<std::string> names_;
  std::unordered_map<std::string, Entry> entries_;
  std::string architecture_;
  std::map<std::string, std::string> strings_;
};

// True when the file starts with the GGUF magic.
bool looks_like_gguf(const MappedFile& file);

}  // namespace wan
