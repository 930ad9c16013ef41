// LoRAs for the Wan DiT, merged into its weights as they are read: W' = W + strength * (alpha / rank) * B A
// for a low-rank pair (B = up [out, rank], A = down [rank, in...]; alpha defaults to the rank, as PEFT
// and ComfyUI's loader take it), W' = W + strength * diff for a full-rank "diff" entry (and bias
// "diff_b"), computed in float32 (the loader then casts to the compute dtype). Several LoRAs add up in
// the order given. A merged source serves every consumer the same weights: one process, each FSDP rank
// (which reads a tensor and keeps its shard), every parallel layout.
//
// Key layouts read (ComfyUI comfy/lora.py model_lora_keys_unet and the trainers in use for Wan):
//   <module>.lora_A.weight / .lora_B.weight             PEFT and diffusers (A = down, B = up)
//   <module>.lora_down.weight / .lora_up.weight / .alpha  ComfyUI, kohya / musubi-tuner
//   <module>.diff / .diff_b                             full-rank weight / bias differences
// with <module> an official module path (blocks.0.self_attn.q) after an optional "diffusion_model.",
// "model.diffusion_model.", "transformer." or "base_model.model." prefix; a diffusers module path
// (blocks.0.attn1.to_q, ffn.net.0.proj, condition_embedder.*, proj_out: diffusers'
// scripts/convert_wan_to_diffusers.py, read backwards); or kohya's flattened form
// lora_unet_blocks_0_self_attn_q (dots as underscores, matched against the DiT's own module names).
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "wan/generation.h"
#include "weights/tensor_source.h"

namespace wan {

// How one LoRA file matched the DiT.
struct LoraReport {
  std::string path;
  std::size_t matched = 0;                      // entries that patch a DiT weight
  std::size_t unmatched = 0;                    // entries that name nothing in the DiT
  std::vector<std::string> unmatched_examples;  // the first few unmatched keys
};

class LoraMergedSource final : public TensorSource {
 public:
  // `base`: the DiT under official names. Opens every LoRA and checks it against `base` (headers
  // only): a file that cannot be read, an entry of a kind it does not know (DoRA's dora_scale), a pair
  // with one half missing or of mismatched rank, a delta whose shape is not the weight's ("a LoRA for
  // another model size", with both shapes), a file that matches no weight at all: wan::Error naming the
  // file and the entry (kFileNotFound, kCorruptFile, kUnsupported, kModelMismatch). Entries that match
  // nothing beside ones that do: kModelMismatch with the counts unless allow_partial.
  LoraMergedSource(TensorSourcePtr base, const std::vector<LoraFile>& loras, bool allow_partial);

  const std::string& path() const override { return base_->path(); }
  const std::vector<std::string>& names() const override { return base_->names(); }
  bool contains(const std::string& name) const override { return base_->contains(name); }
  // The base's info; view() of a patched weight returns float32 (the merge's dtype).
  const TensorInfo& info(const std::string& name) const override { return base_->info(name); }
  torch::Tensor view(const std::string& name) const override;
  // A patched weight: only the rows that cover the range are merged (each FSDP rank merges its shard).
  torch::Tensor flat_range(const std::string& name, std::int64_t offset, std::int64_t count) const override;
  void release_resident_pages() const override;
  void release_pages_of(const std::string& name) const override { base_->release_pages_of(name); }
  std::string stored_type_name(const std::string& name) const override { return base_->stored_type_name(name); }
  std::int64_t stored_bytes(const std::string& name) const override { return base_->stored_bytes(name); }
  // The base's, except for a patched weight (nullopt: it is the merge, in float32, not q * s).
  std::optional<Float8Weight> float8_weight(const std::string& name) const override {
    return patches_.count(name) ? std::nullopt : base_->float8_weight(name);
  }

  const std::vector<LoraReport>& reports() const { return reports_; }
  // The DiT weights at least one LoRA patches.
  std::size_t patched_count() const { return patches_.size(); }

  struct Patch {
    TensorSourcePtr file;
    std::string up, down, diff;  // entry names in `file` (up/down, or diff)
    double scale = 1.0;          // strength * alpha / rank, or strength for a diff
  };

 private:
  TensorSourcePtr base_;
  std::vector<TensorSourcePtr> files_;
  std::unordered_map<std::string, std::vector<Patch>> patches_;  // official weight name -> patches
  std::vector<LoraReport> reports_;
};

// The official module path a LoRA key's module part stands for, or "" when it is in none of the
// layouts above. `flat_modules` maps kohya's flattened names (dots as underscores) to module paths.
std::string lora_module_to_official(const std::string& module,
                                    const std::unordered_map<std::string, std::string>& flat_modules);

}  // namespace wan
