// inspect_model: the model panel's facts, from headers and shapes only.
#include "wan/model_info.h"

#include <filesystem>
#include <map>

#include "model/clip.h"
#include "model/dit_config.h"
#include "model/model_files.h"
#include "model/t5.h"
#include "model/vae.h"
#include "pipeline/demo_model.h"
#include "pipeline/model_folder.h"
#include "wan/error.h"
#include "weights/file_util.h"
#include "weights/loader.h"
#include "weights/name_tables.h"

namespace wan {
namespace {

std::string dominant_dtype(const TensorSource& source) {
  std::map<std::string, std::int64_t> bytes;
  for (const std::string& name : source.names()) bytes[source.stored_type_name(name)] += source.stored_bytes(name);
  std::string best;
  std::int64_t most = -1;
  for (const auto& [dtype, n] : bytes)
    if (n > most) most = n, best = dtype;
  return best;
}

// Elements of the float8 matrices named "*.weight": the Linear weights Fp8Weights::kKeep keeps in
// float8 (model_files.h keep_float8_weights). Tables read by index (umT5's token and relative-position
// embeddings) are matrices too but not Linear: `embedding` names them.
std::int64_t float8_linear_params(const TensorSource& source, bool (*embedding)(const std::string&)) {
  std::int64_t n = 0;
  for (const std::string& name : source.names()) {
    const TensorInfo& ti = source.info(name);
    const bool float8 = ti.dtype == StoredDType::kF8E4M3 || ti.dtype == StoredDType::kF8E5M2;
    if (!float8 || ti.shape.size() != 2 || name.size() < 7 || name.compare(name.size() - 7, 7, ".weight") != 0 ||
        (embedding && embedding(name)))
      continue;
    n += ti.shape[0] * ti.shape[1];
  }
  return n;
}

bool t5_embedding_table(const std::string& name) { return name.find("embedding.") != std::string::npos; }

}  // namespace

ModelInfo inspect_model(const ModelFiles& files) {
  const ResolvedModel r = resolve_model_files(files);
  ModelInfo info;
  info.layout = r.layout;
  info.dit_path = r.dit;
  info.t5_path = r.t5;
  info.vae_path = r.vae;
  info.tokenizer_path = r.tokenizer;

  const TensorSourcePtr dit_source = open_weights(r.dit);
  const RenamedSource dit_named(dit_source, dit_official_name);
  const DitConfig dit = dit_config_for(dit_named, r.dit_config);
  info.kind = dit_kind_name(dit.kind);
  info.label = dit.label();
  if (!r.dit_high.empty()) {  // Wan2.2 A14B: two experts of this size
    info.moe = true;
    info.dit_high_path = r.dit_high;
    info.label = std::string(dit_kind_name(dit.kind)) + "-A14B (2 experts of " + dit.label().substr(4) + ")";
    info.dims.experts = 2;
  }
  info.dit_dtype = dominant_dtype(*dit_source);
  info.dit_file_bytes = dit_source->total_bytes();

  ModelDims& m = info.dims;
  m.name = info.label;
  m.i2v = dit.has_image_input();
  m.clip = dit.has_clip_input();
  m.ti2v = dit.kind == DitKind::kTI2V;
  m.dim = static_cast<int>(dit.dim);
  m.ffn_dim = static_cast<int>(dit.ffn_dim);
  m.num_heads = static_cast<int>(dit.num_heads);
  m.num_layers = static_cast<int>(dit.num_layers);
  m.in_dim = static_cast<int>(dit.in_dim);
  m.out_dim = static_cast<int>(dit.out_dim);
  m.text_dim = static_cast<int>(dit.text_dim);
  m.freq_dim = static_cast<int>(dit.freq_dim);
  m.text_len = static_cast<int>(dit.text_len);
  m.dit_params = dit_named.parameter_count();
  m.dit_float8_params = float8_linear_params(dit_named, nullptr);

  const TensorSourcePtr t5_source = open_weights(r.t5);
  const RenamedSource t5_named(t5_source, t5_official_name);
  const T5Config t5 = detect_t5_config(t5_named);
  m.t5_dim = static_cast<int>(t5.dim);
  m.t5_ffn = static_cast<int>(t5.dim_ffn);
  m.t5_heads = static_cast<int>(t5.num_heads);
  m.t5_layers = static_cast<int>(t5.num_layers);
  m.t5_vocab = static_cast<int>(t5.vocab);
  m.t5_buckets = static_cast<int>(t5.num_buckets);
  m.t5_params = t5_named.parameter_count();
  m.t5_float8_params = float8_linear_params(t5_named, t5_embedding_table);
  info.t5_file_bytes = t5_source->total_bytes();

  const TensorSourcePtr vae_source = open_weights(r.vae);
  const VaeConfig vae = vae_config_of(*vae_source);
  m.vae_dim = static_cast<int>(vae.dim);
  m.z_dim = static_cast<int>(vae.z_dim);
  m.vae_stride = static_cast<int>(vae.spatial_stride());
  m.vae_dec_dim = static_cast<int>(vae.dec_dim);
  m.vae_params = vae_source->parameter_count();
  info.vae_file_bytes = vae_source->total_bytes();

  if (m.i2v && m.clip) {
    try {
      info.clip_path = resolve_clip_file(files, r);
      const TensorSourcePtr clip_source = open_weights(info.clip_path);
      const ClipVisionConfig clip = detect_clip_config(*clip_source);
      m.clip_dim = static_cast<int>(clip.dim);
      m.clip_mlp = static_cast<int>(clip.mlp_dim);
      m.clip_heads = static_cast<int>(clip.num_heads);
      m.clip_layers = static_cast<int>(clip.num_layers);
      m.clip_tokens = static_cast<int>(clip.tokens());
      m.clip_params = clip.parameter_count();
      info.clip_file_bytes = clip_source->total_bytes();
    } catch (const Error& e) {
      info.clip_error = e.what();
      m.clip_dim = static_cast<int>(dit.clip_dim);
    }
  }
  return info;
}

std::string demo_model_dir(bool i2v) { return ensure_demo_model(nullptr, i2v); }

std::string demo_moe_model_dir() {
  const std::string dir = default_demo_model_dir() + "-moe";
  if (std::filesystem::exists(std::filesystem::path(dir) / "low_noise_model" / "config.json")) return dir;
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(dir).parent_path(), ec);
  DemoModelSpec spec;
  spec.moe = true;
  make_demo_model(dir, spec);
  return dir;
}

}  // namespace wan
