// WanModel (DiT) configuration: from an official config.json, or detected from tensor shapes
// (ComfyUI single files carry no config).
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "wan/error.h"
#include "weights/tensor_source.h"

namespace wan {

// kTI2V: Wan2.2 TI2V-5B (model_type "ti2v": 48 latent channels in and out, no y, no CLIP; image-to-video
// by replacing latent frame 0 and per-token timesteps).
enum class DitKind { kT2V, kI2V, kFLF2V, kTI2V };

struct DitConfig {
  DitKind kind = DitKind::kT2V;
  std::array<std::int64_t, 3> patch_size{1, 2, 2};
  std::int64_t text_len = 512;
  std::int64_t in_dim = 16;
  std::int64_t dim = 1536;
  std::int64_t ffn_dim = 8960;
  std::int64_t freq_dim = 256;
  std::int64_t text_dim = 4096;
  std::int64_t out_dim = 16;
  std::int64_t num_heads = 12;
  std::int64_t num_layers = 30;
  std::int64_t clip_dim = 1280;  // i2v image-embedding input width
  // i2v/flf2v: whether the DiT takes CLIP image features (img_emb, the k_img/v_img cross-attention): Wan2.1's
  // image-to-video models do; Wan2.2's I2V-A14B (wan2.2 model.py) has no image embedding, only the y
  // channels. Not in config.json (model_type "i2v" in both): read from the weights.
  bool clip_input = true;
  bool qk_norm = true;
  bool cross_attn_norm = true;
  double eps = 1e-6;

  std::int64_t head_dim() const { return dim / num_heads; }
  // The start picture enters as y (mask + VAE latent) concatenated on channels: i2v and flf2v.
  bool has_image_input() const { return kind == DitKind::kI2V || kind == DitKind::kFLF2V; }
  bool has_clip_input() const { return has_image_input() && clip_input; }
  // Throws wan::Error(code) naming `context` for a size out of its range or inconsistent values (dim
  // not divisible by heads): kCorruptFile where the values come from a file (config.json, the tensors'
  // shapes), kInvalidArgument where the user typed them (`wan make-demo-model --dim`).
  void validate(const std::string& context, ErrorCode code = ErrorCode::kCorruptFile) const;
  // "t2v-1.3B"-style label (size from the parameter count).
  std::string label() const;
  std::int64_t parameter_count() const;
};

const char* dit_kind_name(DitKind kind);

// Parses an official config.json (fields absent there take the constructor defaults of §1.1).
// A config.json that describes another (larger) model than the weights beside it: refused before the
// DiT is built, or a hostile num_layers would allocate layer after layer (../shared/bad-inputs/). 1 %
// slack for buffers a checkpoint may leave out. Throws wan::Error(kModelMismatch) naming both files.
void check_config_fits_weights(const DitConfig& config, std::int64_t stored_params, const std::string& config_path,
                               const std::string& weights_path);

DitConfig dit_config_from_json(const std::string& json_text, const std::string& context);

// Sizes from tensor shapes (names without any "model.diffusion_model." prefix). Heads = dim / 128 and
// text_len = 512 as in every released model. i2v: img_emb present (Wan2.1, CLIP features), or absent with
// in_dim = 2 * out_dim + 4 (Wan2.2 I2V-A14B: noise + 4 mask + image latent channels). ti2v: 48 channels
// in and out (the Wan2.2 VAE's latent; TI2V-5B is the one such model).
DitConfig detect_dit_config(const TensorSource& source, const std::string& prefix = "");

// The configuration of the DiT whose weights (official names) are `source`, from its config.json text
// (`context` names it in errors) with what config.json does not say (clip_dim, clip_input) read from the
// weights. Validated; a config.json that disagrees with the weights on the model type is refused
// (kModelMismatch, naming both). Throws what dit_config_from_json and detect_dit_config throw.
DitConfig dit_config_with_weights(const std::string& json_text, const std::string& context, const TensorSource& source);
// From `config_path` (a config.json) when given, else detected from the weights alone; a config.json
// that asks for more parameters than the weights hold is refused too (check_config_fits_weights). Also
// throws what read_text_file throws.
DitConfig dit_config_for(const TensorSource& source, const std::string& config_path);

}  // namespace wan
