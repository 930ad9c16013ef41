// WanModel (DiT) configuration: from an official config.json, or detected from tensor shapes
// (ComfyUI single files carry no config).
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "wan/error.h"
#include "weights/tensor_source.h"

namespace wan {

enum class DitKind { kT2V, kI2V, kFLF2V };

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
  bool qk_norm = true;
  bool cross_attn_norm = true;
  double eps = 1e-6;

  std::int64_t head_dim() const { return dim / num_heads; }
  bool has_image_input() const { return kind != DitKind::kT2V; }
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
// text_len = 512 as in every released model.
DitConfig detect_dit_config(const TensorSource& source, const std::string& prefix = "");

}  // namespace wan
