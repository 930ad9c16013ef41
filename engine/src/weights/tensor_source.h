// A read-only collection of named tensors backed by a file (safetensors, torch .pth, sharded folder).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "weights/stored_dtype.h"

namespace wan {

struct TensorInfo {
  StoredDType dtype = StoredDType::kF32;
  std::vector<std::int64_t> shape;
  std::string file;  // the file that holds it (for messages)
};

// A weight as a file stores it in float8 (weights/scaled_fp8.h): q in float8_e4m3fn or float8_e5m2
// (a CPU view of the file) and its float32 scale s (a scalar, one per output row [out] or [out, 1],
// or one per block of each row [out, blocks, 1] or [out, blocks]; undefined for a plain float8 file). The weight it
// stands for is dequantize_float8(q, s).
struct Float8Weight {
  torch::Tensor q, scale;
};

class TensorSource {
 public:
  virtual ~TensorSource() = default;
  // What the user pointed at (file or index), for messages.
  virtual const std::string& path() const = 0;
  // Names in file order.
  virtual const std::vector<std::string>& names() const = 0;
  virtual bool contains(const std::string& name) const = 0;
  // Throws wan::Error(kModelMismatch) for an unknown name.
  virtual const TensorInfo& info(const std::string& name) const = 0;
  // A CPU tensor in the stored dtype that views the mapped file (no copy); it keeps the mapping alive.
  virtual torch::Tensor view(const std::string& name) const = 0;

  // Elements [offset, offset + count) of view(name) flattened in row-major order (what one FSDP rank
  // keeps of a tensor, dist/fsdp.h). Sources that compute a tensor's values (a LoRA merge, a scaled
  // float8 weight) compute only the rows of dim 0 that cover the range. The caller keeps the range
  // within the tensor.
  virtual torch::Tensor flat_range(const std::string& name, std::int64_t offset, std::int64_t count) const;
  // view(name) converted to dtype and device (a copy owned by the caller).
  torch::Tensor load(const std::string& name, torch::ScalarType dtype, torch::Device device = torch::kCPU) const;
  // `name` as its float8 bytes and scale, for a model that keeps float8 weights in memory
  // (Fp8Weights::kKeep); nullopt when it is not stored in float8, or when what view() returns is not
  // q * s (a LoRA-merged weight). Default: a float8 tensor of info() with no scale.
  virtual std::optional<Float8Weight> float8_weight(const std::string& name) const;
  // Drops the file pages read so far from the resident set (after the weights were copied out).
  virtual void release_resident_pages() const {}
  // The same for one tensor's bytes, once they were copied out (loading a model then holds the model
  // plus one tensor of the file, not the model plus the whole file).
  virtual void release_pages_of(const std::string& name) const {}
  // What the file stores for `name`, for model panels and estimates: its dtype's safetensors name
  // ("BF16", "F8_E4M3") by default; a GGUF file's ggml type ("Q4_K").
  virtual std::string stored_type_name(const std::string& name) const;
  // Bytes of `name` as stored (elements x dtype size by default; a GGUF file's block bytes).
  virtual std::int64_t stored_bytes(const std::string& name) const;
  // Total bytes of all tensors as stored.
  std::int64_t total_bytes() const;
  // Elements of all tensors (the parameter count), without a ComfyUI file's embedded tokenizer bytes.
  std::int64_t parameter_count() const;
};

using TensorSourcePtr = std::shared_ptr<TensorSource>;

// "[5120, 5120]": a shape in the loaders' messages.
std::string shape_text(const std::vector<std::int64_t>& shape);

}  // namespace wan
