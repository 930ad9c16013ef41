// float8 checkpoints with scales ("fp8_scaled"): ComfyUI's repackaged Wan DiTs and umT5 encoders
// (`*_fp8_scaled.safetensors`) and the diffusers-style files, read as the weights they stand for.
//
// What such a file holds (ComfyUI comfy/ops.py scaled_fp8_ops and comfy/quant_ops.py; the
// diffusers-style writers):
//   <module>.weight        float8_e4m3fn or float8_e5m2 (the quantized weight q)
//   <module>.scale_weight  ComfyUI's spelling of its scale s, float32
//   <module>.weight_scale  the diffusers-style spelling of the same
//   <module>.scale_input / <module>.input_scale   activation scales for fp8 matmuls: ignored (the engine
//                                                 computes in the compute dtype)
//   scaled_fp8             ComfyUI's marker (a small float8 tensor naming the format): ignored
// The weight is q.float() * s (ComfyUI's dequantize: `weight.to(dtype) * scale_weight`), with s a
// scalar (one per tensor), one per output row ([out] or [out, 1]), or one per block of each row
// ([out, blocks, 1] or [out, blocks]); any other shape, and a NaN or infinite scale, is refused naming
// the tensor. A float8 weight without a scale
// in a file where other float8 weights have one is refused: read as it is it would be off by its scale
// (white or black frames with no error).
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "weights/tensor_source.h"

namespace wan {

class ScaledFp8Source final : public TensorSource {
 public:
  // Throws wan::Error(kCorruptFile) naming the file and the tensor for a scale of the wrong shape or
  // dtype, and for a float8 weight without a scale where its siblings have one.
  explicit ScaledFp8Source(TensorSourcePtr inner);

  const std::string& path() const override { return inner_->path(); }
  const std::vector<std::string>& names() const override { return names_; }
  bool contains(const std::string& name) const override { return visible_.count(name) != 0; }
  // As stored (the float8 dtype for a scaled weight): what the file holds.
  const TensorInfo& info(const std::string& name) const override { return inner_->info(checked(name)); }
  // A scaled weight: a new float32 tensor q * s. Others: the inner view.
  torch::Tensor view(const std::string& name) const override;
  // A scaled weight: only the rows that cover the range are dequantized (each FSDP rank its shard).
  torch::Tensor flat_range(const std::string& name, std::int64_t offset, std::int64_t count) const override;
  void release_resident_pages() const override { inner_->release_resident_pages(); }
  void release_pages_of(const std::string& name) const override { inner_->release_pages_of(name); }

  // A scaled weight: its float8 bytes and its scale (as stored; dequantize_float8 broadcasts it).
  std::optional<Float8Weight> float8_weight(const std::string& name) const override;

  // How many weights carry a scale.
  std::size_t scaled_count() const { return scale_of_.size(); }

 private:
  const std::string& checked(const std::string& name) const;
  TensorSourcePtr inner_;
  std::vector<std::string> names_;
  std::unordered_map<std::string, bool> visible_;
  std::unordered_map<std::string, std::string> scale_of_;  // weight name -> its scale's name
};

// q.float() * s in float32, s broadcast as ComfyUI's dequantize does (a scalar, one per output row, one
// per block of each row: the shapes Float8Weight names); s undefined: q.float(). q and s on one device.
// The one definition of the dequantized value: the loader (Fp8Weights::kDequantize) and a layer that
// keeps float8 weights (kKeep) both call it, so the two modes compute with the same numbers.
torch::Tensor dequantize_float8(const torch::Tensor& q, const torch::Tensor& scale);

// True when `source` holds scale entries of either spelling (or ComfyUI's marker).
bool has_fp8_scales(const TensorSource& source);

// `source` as ScaledFp8Source when it has scales, else unchanged.
TensorSourcePtr with_fp8_scales_applied(TensorSourcePtr source);

}  // namespace wan
