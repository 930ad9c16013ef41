#include "model/model_files.h"

#include <torch/torch.h>

#include "core/cpu_allocator.h"
#include "wan/error.h"
#include "weights/loader.h"
#include "weights/name_tables.h"

namespace wan {

KeptFloat8 keep_float8_weights(torch::nn::Module& module, const TensorSource& source, torch::Device device) {
  KeptFloat8 kept;
  for (const auto& item : module.named_modules("", /*include_self=*/false)) {
    auto* linear = dynamic_cast<LinearImpl*>(item.value().get());
    if (!linear) continue;
    const std::string name = item.key() + ".weight";
    if (!source.contains(name)) continue;  // load_strict names what is missing
    const std::optional<Float8Weight> f = source.float8_weight(name);
    if (!f) continue;
    linear->weight.set_data(
        uninitialized(linear->weight.sizes(), torch::TensorOptions().dtype(f->q.scalar_type()).device(device)));
    linear->weight_scale =
        f->scale.defined() ? f->scale.to(device, torch::kFloat32, false, /*copy=*/true) : torch::Tensor();
    kept.weights += 1;
    kept.bytes += linear->weight.numel();
  }
  return kept;
}

LoadedDit load_dit(const TensorSourcePtr& file, const std::string& config_json, const ModelPlacement& placement,
                   const ShardingLoader& sharding) {
  LoadedDit out;
  const LongLivedBlocks weights;  // the parameters stay for the phase: sized tightly
  out.source = std::make_shared<RenamedSource>(file, dit_official_name);
  out.config = config_json.empty() ? detect_dit_config(*out.source)
                                   : dit_config_with_weights(config_json, file->path() + " (config.json)", *out.source);
  const std::string what = "DiT (" + out.config.label() + ")";
  {
    std::optional<DeferredParameters> deferred;
    if (sharding) deferred.emplace();
    out.model = WanModel(out.config, placement);
    if (placement.keep_float8) out.kept_float8 = keep_float8_weights(*out.model, *out.source, placement.device);
  }
  if (sharding)
    out.model->residency = sharding(*out.model, out.config.num_layers, *out.source, what, placement.device);
  else
    load_strict(*out.model, *out.source, what);
  out.model->eval();
  return out;
}

LoadedT5 load_t5(const TensorSourcePtr& file, const ModelPlacement& placement, const ShardingLoader& sharding) {
  LoadedT5 out;
  const LongLivedBlocks weights;  // the parameters stay for the phase: sized tightly
  auto renamed = std::make_shared<RenamedSource>(file, t5_official_name);
  out.config = detect_t5_config(*renamed);
  if (file->contains("spiece_model")) {
    torch::Tensor bytes = file->view("spiece_model").contiguous().to(torch::kUInt8);
    std::string proto(reinterpret_cast<const char*>(bytes.data_ptr()), static_cast<std::size_t>(bytes.numel()));
    out.embedded_tokenizer = Tokenizer::from_serialized(proto, file->path() + " (spiece_model)");
  }
  const std::string what = "umT5 text encoder";
  {
    std::optional<DeferredParameters> deferred;
    if (sharding) deferred.emplace();
    out.model = T5Encoder(out.config, placement);
    if (placement.keep_float8) out.kept_float8 = keep_float8_weights(*out.model, *renamed, placement.device);
  }
  if (sharding)
    out.model->residency = sharding(*out.model, out.config.num_layers, *renamed, what, placement.device);
  else
    load_strict(*out.model, *renamed, what);
  out.model->eval();
  return out;
}

VaeConfig vae_config_of(const TensorSource& source) {
  if (!is_wan22_vae(source)) return detect_vae_config(source);
  const Vae22Config v = detect_vae22_config(source);
  VaeConfig c;
  c.wan22 = true;
  c.patch = 2;
  c.dim = v.dim;
  c.dec_dim = v.dec_dim;
  c.z_dim = v.z_dim;
  c.dim_mult = v.dim_mult;
  c.num_res_blocks = v.num_res_blocks;
  c.temporal_downsample = v.temporal_downsample;
  return c;
}

torch::Tensor LoadedVae::encode(const torch::Tensor& video) {
  return model22 ? model22->encode(video) : model->encode(video);
}

torch::Tensor LoadedVae::decode(const torch::Tensor& latent, const std::function<void(int, int)>& on_frame) {
  return model22 ? model22->decode(latent, on_frame) : model->decode(latent, on_frame);
}

LoadedVae load_vae(const TensorSourcePtr& file, const ModelPlacement& placement) {
  LoadedVae out;
  const LongLivedBlocks weights;  // the parameters stay for the phase: sized tightly
  out.config = vae_config_of(*file);
  if (out.config.wan22) {
    out.model22 = load_vae22(file, placement);
    return out;
  }
  out.model = WanVae(out.config, placement);
  load_strict(*out.model, *file, "Wan VAE");
  out.model->eval();
  return out;
}

LoadedClip load_clip(const TensorSourcePtr& file, const ModelPlacement& placement, std::int64_t num_heads) {
  LoadedClip out;
  const LongLivedBlocks weights;  // the parameters stay for the phase: sized tightly
  out.config = detect_clip_config(*file, num_heads);
  out.model = ClipVision(out.config, placement);
  load_strict(*out.model, *clip_module_source(file, out.config), "CLIP vision");
  out.model->eval();
  return out;
}

}  // namespace wan
