// Renames for the checkpoint layouts in the wild, in one place: ComfyUI's prefixed DiT keys, the
// Hugging Face / ComfyUI umT5 names, and the tensors each layout carries that the engine ignores
// (CLIP's names and reshapes are in model/clip.cpp: clip_module_source).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "weights/tensor_source.h"

namespace wan {

// file name -> official name, or nullopt when the tensor is to be ignored.
using NameMap = std::function<std::optional<std::string>(const std::string&)>;

// DiT: strips an optional "model.diffusion_model." prefix.
std::optional<std::string> dit_official_name(const std::string& file_name);
// umT5: HF names (shared.weight, encoder.block.N.layer.0.SelfAttention.q.weight, ...) -> official
// (token_embedding.weight, blocks.N.attn.q.weight, ...); official names pass through; the embedded
// tokenizer (spiece_model) and HF's duplicate encoder.embed_tokens.weight are ignored.
std::optional<std::string> t5_official_name(const std::string& file_name);
// VAE: identity.
std::optional<std::string> identity_name(const std::string& file_name);

// A view of another source under official names. Ignored tensors are left out.
class RenamedSource final : public TensorSource {
 public:
  // Throws wan::Error(kModelMismatch) if two file tensors map to the same official name.
  RenamedSource(TensorSourcePtr inner, const NameMap& map);

  const std::string& path() const override { return inner_->path(); }
  const std::vector<std::string>& names() const override { return names_; }
  bool contains(const std::string& name) const override { return to_file_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const override;
  torch::Tensor view(const std::string& name) const override;
  void release_resident_pages() const override { inner_->release_resident_pages(); }
  void release_pages_of(const std::string& name) const override {
    const auto it = to_file_.find(name);
    if (it != to_file_.end()) inner_->release_pages_of(it->second);
  }
  std::string stored_type_name(const std::string& name) const override {
    return inner_->stored_type_name(file_name(name));
  }
  std::int64_t stored_bytes(const std::string& name) const override { return inner_->stored_bytes(file_name(name)); }
  std::optional<Float8Weight> float8_weight(const std::string& name) const override {
    return inner_->float8_weight(file_name(name));
  }
  torch::Tensor flat_range(const std::string& name, std::int64_t offset, std::int64_t count) const override {
    return inner_->flat_range(file_name(name), offset, count);
  }
  const std::vector<std::string>& ignored() const { return ignored_; }
  const TensorSourcePtr& inner() const { return inner_; }

 private:
  const std::string& file_name(const std::string& name) const;
  TensorSourcePtr inner_;
  std::vector<std::string> names_;
  std::vector<std::string> ignored_;
  std::unordered_map<std::string, std::string> to_file_;
};

}  // namespace wan
