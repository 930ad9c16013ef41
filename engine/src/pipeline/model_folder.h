// Finds the DiT, umT5, VAE and tokenizer files of a model: an official Wan2.1 folder, an official
// Wan2.2 A14B folder (high_noise_model/ and low_noise_model/ beside the text encoder and VAE), a ComfyUI
// models folder (diffusion_models/, text_encoders/, vae/), or files named one by one.
#pragma once
#include <string>

#include "wan/generation.h"

namespace wan {

struct ResolvedModel {
  std::string layout;      // "official" | "comfyui" | "files"
  std::string dit;         // .safetensors, .index.json or .pth (Wan2.2 A14B: the low-noise expert)
  std::string dit_config;  // official config.json, or empty (sizes from the tensors)
  // Wan2.2 A14B: the high-noise expert (an official folder's high_noise_model/, or --dit-high) and its
  // config.json; empty for a single DiT.
  std::string dit_high, dit_high_config;
  std::string t5;
  std::string vae;
  std::string tokenizer;  // spiece.model, or empty: the text encoder file embeds it
  std::string clip;       // CLIP vision tower (image-to-video only; see resolve_clip_file)
  // Wan2.2 A14B from ComfyUI's two files found by their names (*_high_noise_* beside *_low_noise_*): what
  // was paired, for a note; empty otherwise.
  std::string paired_experts;
};

// Throws wan::Error(kFileNotFound / kInvalidArgument) naming what is missing and how to point at it.
ResolvedModel resolve_model_files(const ModelFiles& files);

// The CLIP vision file image-to-video needs: files.clip (as is or under clip_vision/), the official
// folder's models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth, or the one CLIP file in a ComfyUI
// folder's clip_vision/. Throws wan::Error naming where it looked and how to point at it.
std::string resolve_clip_file(const ModelFiles& files, const ResolvedModel& resolved);

// A --lora file: as given, or a name inside <model_dir>/loras/ (ComfyUI's folder). Throws
// wan::Error(kFileNotFound) naming both places.
std::string resolve_lora_file(const std::string& given, const std::string& model_dir);

}  // namespace wan
