// What a model is, read from its files' headers only (no weights loaded): for the studio's model panel,
// `wan estimate --model` and the estimator's "loaded model" row. No torch types.
#pragma once
#include <cstdint>
#include <string>

#include "wan/estimate.h"
#include "wan/generation.h"

namespace wan {

struct ModelInfo {
  std::string layout;  // "official" | "comfyui" | "files"
  std::string kind;    // "t2v" | "i2v" | "flf2v"
  std::string label;   // e.g. "t2v-1.3B"
  // Stored type of most DiT bytes: "F32", "BF16", "F16", "F8_E4M3", ..., or a GGUF file's ggml type
  // ("Q4_K", "Q8_0"); the DiT is dequantized to the compute dtype when it loads.
  std::string dit_dtype;
  std::string dit_path, t5_path, vae_path, tokenizer_path;
  std::int64_t dit_file_bytes = 0, t5_file_bytes = 0, vae_file_bytes = 0;  // tensor bytes as stored
  // Image-to-video models: the CLIP vision file, or why it was not found (the model still inspects).
  std::string clip_path, clip_error;
  std::int64_t clip_file_bytes = 0;
  // Wan2.2 A14B: two experts (dit_path the low-noise one, dit_high_path the high-noise one).
  bool moe = false;
  std::string dit_high_path;
  ModelDims dims;  // sizes and exact parameter counts (of one expert; dims.experts says how many)
};

// Throws wan::Error (kFileNotFound, kCorruptFile, kModelMismatch) like `wan generate` would.
ModelInfo inspect_model(const ModelFiles& files);

// The built-in demo model's folder, created on first use (see `wan generate` without --model); i2v:
// the image-to-video demo model's.
std::string demo_model_dir(bool i2v = false);
// The Wan2.2 A14B-style demo (two experts, DemoModelSpec::moe) in "demo-model-moe" beside it, created on
// first use.
std::string demo_moe_model_dir();

}  // namespace wan
