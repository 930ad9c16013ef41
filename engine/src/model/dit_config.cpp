#include "model/dit_config.h"

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/json_number.h"
#include "wan/error.h"
#include "weights/file_util.h"

namespace wan {

namespace {
constexpr std::int64_t kTi2vLatentChannels = 48;  // wan/configs/wan_ti2v_5B.py: the Wan2.2 VAE's z_dim
}  // namespace

const char* dit_kind_name(DitKind kind) {
  switch (kind) {
    case DitKind::kT2V:
      return "t2v";
    case DitKind::kI2V:
      return "i2v";
    case DitKind::kFLF2V:
      return "flf2v";
    case DitKind::kTI2V:
      return "ti2v";
  }
  return "?";
}

void DitConfig::validate(const std::string& context, ErrorCode code) const {
  auto bad = [&](const std::string& what) { throw Error(code, context + ": " + what); };
  // Each size positive and at most a bound well past every Wan model (Wan2.1/2.2 14B: dim 5120, ffn 13824,
  // 40 heads, 40 layers, in_dim 36, text_len 512), so that a hostile config.json cannot ask for
  // terabytes or a billion layers before a single tensor is compared with the file.
  const std::pair<const char*, std::pair<std::int64_t, std::int64_t>> sizes[] = {{"dim", {dim, 65536}},
                                                                                 {"ffn_dim", {ffn_dim, 262144}},
                                                                                 {"num_heads", {num_heads, 1024}},
                                                                                 {"num_layers", {num_layers, 1000}},
                                                                                 {"freq_dim", {freq_dim, 65536}},
                                                                                 {"text_dim", {text_dim, 65536}},
                                                                                 {"in_dim", {in_dim, 4096}},
                                                                                 {"out_dim", {out_dim, 4096}},
                                                                                 {"text_len", {text_len, 65536}}};
  for (const auto& [name, value_max] : sizes)
    if (value_max.first <= 0 || value_max.first > value_max.second)
      bad(std::string(name) + " " + std::to_string(value_max.first) + " is out of range (1 to " +
          std::to_string(value_max.second) + ")");
  if (!(eps > 0 && eps < 1)) {
    char got[32];
    std::snprintf(got, sizeof got, "%.6g", eps);
    bad(std::string("eps must be a small positive number (got ") + got + ")");
  }
  if (dim % num_heads != 0)
    bad("dim " + std::to_string(dim) + " is not divisible by num_heads " + std::to_string(num_heads));
  if (head_dim() % 2 != 0) bad("head_dim must be even for RoPE");
  if (freq_dim % 2 != 0) bad("freq_dim must be even");
  for (std::int64_t p : patch_size)
    if (p <= 0 || p > 64) bad("patch_size must be between 1 and 64");
}

std::int64_t DitConfig::parameter_count() const {
  const std::int64_t p = patch_size[0] * patch_size[1] * patch_size[2];
  std::int64_t n = dim * in_dim * p + dim;                                   // patch embedding
  n += text_dim * dim + dim + dim * dim + dim;                               // text embedding
  n += freq_dim * dim + dim + dim * dim + dim + dim * 6 * dim + 6 * dim;     // time embedding + projection
  n += p * out_dim * dim + p * out_dim + 2 * dim;                            // head
  std::int64_t block = 6 * dim + 8 * (dim * dim + dim) + 4 * dim + 2 * dim;  // modulation, attn, norms, norm3
  block += dim * ffn_dim + ffn_dim + ffn_dim * dim + dim;
  if (has_clip_input()) {
    block += 2 * (dim * dim + dim) + dim;
    n += 2 * clip_dim + clip_dim * clip_dim + clip_dim + clip_dim * dim + dim + 2 * dim;
    if (kind == DitKind::kFLF2V) n += 514 * clip_dim;
  }
  return n + block * num_layers;
}

std::string DitConfig::label() const {
  const double billions = static_cast<double>(parameter_count()) / 1e9;
  char size[32];
  if (billions >= 0.95)
    std::snprintf(size, sizeof size, "%.3gB", std::round(billions * 10) / 10);
  else
    std::snprintf(size, sizeof size, "%.3gM", std::round(billions * 1e4) / 10);
  return std::string(dit_kind_name(kind)) + "-" + size;
}

void check_config_fits_weights(const DitConfig& config, std::int64_t stored_params, const std::string& config_path,
                               const std::string& weights_path) {
  const std::int64_t described = config.parameter_count();
  if (described > stored_params + stored_params / 100)
    throw Error(ErrorCode::kModelMismatch,
                config_path + " describes a DiT of " + std::to_string(described) + " parameters (" + config.label() +
                    ", " + std::to_string(config.num_layers) + " layers), but " + weights_path + " holds " +
                    std::to_string(stored_params) + ": the config does not belong to these weights");
}

DitConfig dit_config_from_json(const std::string& json_text, const std::string& context) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_text);
  } catch (const std::exception& e) {
    throw Error(ErrorCode::kCorruptFile, context + ": not valid JSON (" + e.what() + ")");
  }
  if (!j.is_object()) throw Error(ErrorCode::kCorruptFile, context + ": not a JSON object");
  DitConfig c;
  try {
    const std::string type = j.value("model_type", std::string("t2v"));
    if (type == "t2v" || type == "t2i")
      c.kind = DitKind::kT2V;
    else if (type == "i2v")
      c.kind = DitKind::kI2V;
    else if (type == "flf2v")
      c.kind = DitKind::kFLF2V;
    else if (type == "ti2v")
      c.kind = DitKind::kTI2V;
    else
      throw Error(ErrorCode::kUnsupported,
                  context + ": model_type '" + type + "' is not supported (t2v, i2v, flf2v, ti2v)");
    // Sizes are JSON integers: a float (1e30) or a number beyond 64 bits is refused by name.
    const auto whole = [&](const nlohmann::json& v, const std::string& key) {
      const std::optional<std::int64_t> n = json_integer<std::int64_t>(v);
      if (!n) throw Error(ErrorCode::kCorruptFile, context + ": " + key + " must be a whole number, not " + v.dump());
      return *n;
    };
    if (j.contains("patch_size")) {
      const nlohmann::json& p = j["patch_size"];
      if (!p.is_array() || p.size() != 3)
        throw Error(ErrorCode::kCorruptFile, context + ": patch_size must have 3 entries");
      c.patch_size = {whole(p[0], "patch_size"), whole(p[1], "patch_size"), whole(p[2], "patch_size")};
    }
    for (auto [key, field] : {std::pair{"text_len", &c.text_len},
                              {"in_dim", &c.in_dim},
                              {"dim", &c.dim},
                              {"ffn_dim", &c.ffn_dim},
                              {"freq_dim", &c.freq_dim},
                              {"text_dim", &c.text_dim},
                              {"out_dim", &c.out_dim},
                              {"num_heads", &c.num_heads},
                              {"num_layers", &c.num_layers}})
      if (j.contains(key)) *field = whole(j[key], key);
    c.qk_norm = j.value("qk_norm", c.qk_norm);
    c.cross_attn_norm = j.value("cross_attn_norm", c.cross_attn_norm);
    if (j.contains("eps") && !j["eps"].is_number())
      throw Error(ErrorCode::kCorruptFile, context + ": eps must be a number, not " + j["eps"].dump());
    c.eps = j.value("eps", c.eps);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(ErrorCode::kCorruptFile, context + ": malformed field (" + e.what() + ")");
  }
  if (!c.qk_norm || !c.cross_attn_norm)
    throw Error(ErrorCode::kUnsupported,
                context + ": qk_norm and cross_attn_norm must be true (as in every Wan2.1 model)");
  c.validate(context);
  return c;
}

DitConfig detect_dit_config(const TensorSource& src, const std::string& prefix) {
  auto shape = [&](const std::string& name) -> const std::vector<std::int64_t>& {
    if (!src.contains(prefix + name))
      throw Error(ErrorCode::kModelMismatch,
                  src.path() + ": not a Wan2.1 DiT checkpoint (tensor '" + prefix + name + "' is missing)");
    return src.info(prefix + name).shape;
  };
  DitConfig c;
  const auto& pe = shape("patch_embedding.weight");  // [dim, in_dim, pt, ph, pw]
  if (pe.size() != 5) throw Error(ErrorCode::kModelMismatch, src.path() + ": patch_embedding.weight is not 5-D");
  c.dim = pe[0];
  c.in_dim = pe[1];
  c.patch_size = {pe[2], pe[3], pe[4]};
  c.ffn_dim = shape("blocks.0.ffn.0.weight")[0];
  c.freq_dim = shape("time_embedding.0.weight")[1];
  c.text_dim = shape("text_embedding.0.weight")[1];
  c.out_dim = shape("head.head.weight")[0] / (c.patch_size[0] * c.patch_size[1] * c.patch_size[2]);
  std::int64_t layers = 0;
  while (src.contains(prefix + "blocks." + std::to_string(layers) + ".modulation")) ++layers;
  c.num_layers = layers;
  c.num_heads = c.dim / 128;
  if (c.num_heads == 0) c.num_heads = 1;
  c.text_len = 512;
  if (src.contains(prefix + "img_emb.proj.0.weight")) {
    c.kind = src.contains(prefix + "img_emb.emb_pos") ? DitKind::kFLF2V : DitKind::kI2V;
    c.clip_dim = shape("img_emb.proj.0.weight")[0];
  } else if (c.in_dim == 2 * c.out_dim + 4) {
    c.kind = DitKind::kI2V;  // Wan2.2 I2V-A14B: y channels, no CLIP
    c.clip_input = false;
  } else if (c.in_dim == kTi2vLatentChannels && c.out_dim == kTi2vLatentChannels) {
    c.kind = DitKind::kTI2V;
  }
  c.validate(src.path());
  return c;
}

DitConfig dit_config_with_weights(const std::string& json_text, const std::string& context,
                                  const TensorSource& source) {
  const DitConfig detected = detect_dit_config(source);
  DitConfig c = dit_config_from_json(json_text, context);
  if (c.has_image_input() != detected.has_image_input() ||
      (c.kind == DitKind::kTI2V && detected.kind != DitKind::kTI2V))
    throw Error(ErrorCode::kModelMismatch, context + " says model_type " + dit_kind_name(c.kind) + " but " +
                                               source.path() + " holds " + dit_kind_name(detected.kind) + " weights");
  if (detected.kind == DitKind::kTI2V) c.kind = DitKind::kTI2V;  // 48 channels: the Wan2.2 VAE's latent
  c.clip_dim = detected.clip_dim;
  c.clip_input = detected.clip_input;
  c.validate(source.path());
  return c;
}

DitConfig dit_config_for(const TensorSource& source, const std::string& config_path) {
  if (config_path.empty()) return detect_dit_config(source);
  const DitConfig c = dit_config_with_weights(read_text_file(config_path), config_path, source);
  check_config_fits_weights(c, source.parameter_count(), config_path, source.path());
  return c;
}

}  // namespace wan
