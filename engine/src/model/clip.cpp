#include "model/clip.h"

#include <torch/nn/functional.h>
#include <torch/torch.h>

#include <cmath>
#include <functional>
#include <map>
#include <regex>

#include "wan/error.h"

namespace wan {

namespace {

// A source whose tensors are made from another source's: renamed views, reshaped views or joined
// copies (ComfyUI's separate q/k/v). Everything else of the file is left out.
class DerivedSource final : public TensorSource {
 public:
  using Make = std::function<torch::Tensor()>;
  explicit DerivedSource(TensorSourcePtr inner) : inner_(std::move(inner)) {}
  void add(const std::string& name, TensorInfo info, Make make) {
    names_.push_back(name);
    entries_[name] = {std::move(info), std::move(make)};
  }
  const std::string& path() const override { return inner_->path(); }
  const std::vector<std::string>& names() const override { return names_; }
  bool contains(const std::string& name) const override { return entries_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const override { return entry(name).info; }
  torch::Tensor view(const std::string& name) const override { return entry(name).make(); }
  void release_resident_pages() const override { inner_->release_resident_pages(); }

 private:
  struct Entry {
    TensorInfo info;
    Make make;
  };
  const Entry& entry(const std::string& name) const {
    const auto it = entries_.find(name);
    if (it == entries_.end()) throw Error(ErrorCode::kModelMismatch, path() + ": no tensor named '" + name + "'");
    return it->second;
  }
  TensorSourcePtr inner_;
  std::vector<std::string> names_;
  std::map<std::string, Entry> entries_;
};

const char* const kHfPrefix = "vision_model.";

// ComfyUI / Hugging Face CLIPVisionModel names for the official ones (per block: the rest of the name).
const std::map<std::string, std::string>& hf_block_names() {
  static const std::map<std::string, std::string> names = {
      {"norm1.weight", "layer_norm1.weight"},
      {"norm1.bias", "layer_norm1.bias"},
      {"norm2.weight", "layer_norm2.weight"},
      {"norm2.bias", "layer_norm2.bias"},
      {"attn.proj.weight", "self_attn.out_proj.weight"},
      {"attn.proj.bias", "self_attn.out_proj.bias"},
      {"mlp.0.weight", "mlp.fc1.weight"},
      {"mlp.0.bias", "mlp.fc1.bias"},
      {"mlp.2.weight", "mlp.fc2.weight"},
      {"mlp.2.bias", "mlp.fc2.bias"},
  };
  return names;
}

bool is_hf(const TensorSource& src) { return src.contains("vision_model.embeddings.patch_embedding.weight"); }

const std::vector<std::int64_t>& shape_of(const TensorSource& src, const std::string& name) {
  if (!src.contains(name))
    throw Error(ErrorCode::kModelMismatch,
                src.path() + ": not a CLIP vision checkpoint (tensor '" + name + "' is missing)");
  return src.info(name).shape;
}

}  // namespace

std::int64_t ClipVisionConfig::parameter_count() const {
  const std::int64_t per_block =
      4 * dim + (3 * dim * dim + 3 * dim) + (dim * dim + dim) + 2 * dim * mlp_dim + mlp_dim + dim;
  return dim * 3 * patch_size * patch_size + dim + tokens() * dim + 2 * dim + used_layers() * per_block;
}

std::int64_t clip_default_heads(std::int64_t dim) {
  if (dim == 1280 || dim == 1024) return 16;
  if (dim == 768) return 12;
  return dim % 16 == 0 ? dim / 16 : 0;
}

ClipVisionConfig detect_clip_config(const TensorSource& src, std::int64_t num_heads_override) {
  const bool hf = is_hf(src);
  const std::string pre = hf ? "vision_model.encoder.layers." : "visual.transformer.";
  ClipVisionConfig c;
  const auto& patch =
      shape_of(src, hf ? "vision_model.embeddings.patch_embedding.weight" : "visual.patch_embedding.weight");
  const auto& pos = shape_of(src, hf ? "vision_model.embeddings.position_embedding.weight" : "visual.pos_embedding");
  if (patch.size() != 4 || patch[1] != 3 || patch[2] != patch[3])
    throw Error(ErrorCode::kModelMismatch, src.path() + ": CLIP patch embedding is not [dim, 3, p, p]");
  c.dim = patch[0];
  c.patch_size = patch[2];
  const std::int64_t grid_tokens = pos[pos.size() - 2] - 1;
  const auto side = static_cast<std::int64_t>(std::llround(std::sqrt(static_cast<double>(grid_tokens))));
  if (side * side != grid_tokens || pos.back() != c.dim)
    throw Error(ErrorCode::kModelMismatch,
                src.path() + ": CLIP position embedding does not describe a square patch grid");
  c.image_size = side * c.patch_size;
  std::int64_t layers = 0;
  while (src.contains(pre + std::to_string(layers) + (hf ? ".layer_norm1.weight" : ".norm1.weight"))) ++layers;
  c.num_layers = layers;
  if (layers < 2)
    throw Error(ErrorCode::kModelMismatch, src.path() + ": CLIP vision tower has " + std::to_string(layers) +
                                               " blocks; image-to-video needs at least 2 (it uses all but the last)");
  c.mlp_dim = shape_of(src, pre + "0." + (hf ? "mlp.fc1.weight" : "mlp.0.weight"))[0];
  c.num_heads = num_heads_override > 0 ? num_heads_override : clip_default_heads(c.dim);
  if (c.num_heads <= 0 || c.dim % c.num_heads != 0)
    throw Error(ErrorCode::kModelMismatch,
                src.path() + ": CLIP width " + std::to_string(c.dim) + " is not divisible into attention heads");
  return c;
}

TensorSourcePtr clip_module_source(const TensorSourcePtr& file, const ClipVisionConfig& c) {
  auto out = std::make_shared<DerivedSource>(file);
  const TensorSourcePtr src = file;
  auto same = [&](const std::string& name, const std::string& file_name) {
    out->add(name, src->info(file_name), [src, file_name] { return src->view(file_name); });
  };
  auto reshaped = [&](const std::string& name, const std::string& file_name, std::vector<std::int64_t> shape) {
    TensorInfo info = src->info(file_name);
    info.shape = shape;
    out->add(name, info, [src, file_name, shape] { return src->view(file_name).reshape(shape); });
  };
  if (!is_hf(*file)) {
    reshaped("patch_embedding.weight", "visual.patch_embedding.weight", {c.dim, 3, c.patch_size, c.patch_size});
    reshaped("cls_embedding", "visual.cls_embedding", {1, 1, c.dim});
    reshaped("pos_embedding", "visual.pos_embedding", {1, c.tokens(), c.dim});
    for (const char* n : {"pre_norm.weight", "pre_norm.bias"}) same(n, std::string("visual.") + n);
    for (std::int64_t i = 0; i < c.used_layers(); ++i) {
      const std::string b = "transformer." + std::to_string(i) + ".";
      for (const auto& [name, unused] : hf_block_names()) same(b + name, "visual." + b + name);
      for (const char* n : {"attn.to_qkv.weight", "attn.to_qkv.bias"}) same(b + n, "visual." + b + n);
    }
    return out;
  }
  const std::string e = std::string(kHfPrefix) + "embeddings.";
  reshaped("patch_embedding.weight", e + "patch_embedding.weight", {c.dim, 3, c.patch_size, c.patch_size});
  reshaped("cls_embedding", e + "class_embedding", {1, 1, c.dim});
  reshaped("pos_embedding", e + "position_embedding.weight", {1, c.tokens(), c.dim});
  same("pre_norm.weight", std::string(kHfPrefix) + "pre_layrnorm.weight");
  same("pre_norm.bias", std::string(kHfPrefix) + "pre_layrnorm.bias");
  for (std::int64_t i = 0; i < c.used_layers(); ++i) {
    const std::string b = "transformer." + std::to_string(i) + ".";
    const std::string hb = std::string(kHfPrefix) + "encoder.layers." + std::to_string(i) + ".";
    for (const auto& [name, hf_name] : hf_block_names()) same(b + name, hb + hf_name);
    for (const std::string kind : {"weight", "bias"}) {
      std::vector<std::string> parts;
      for (const char* p : {"q", "k", "v"}) parts.push_back(hb + "self_attn." + p + "_proj." + kind);
      TensorInfo info = src->info(parts[0]);
      info.shape[0] *= 3;
      out->add(b + "attn.to_qkv." + kind, info, [src, parts] {
        return torch::cat({src->view(parts[0]), src->view(parts[1]), src->view(parts[2])}, 0);
      });
    }
  }
  return out;
}

ClipBlockImpl::ClipBlockImpl(const ClipVisionConfig& c, const ModelPlacement& p) : num_heads(c.num_heads), eps(c.eps) {
  norm1 = register_module("norm1", Affine(c.dim, p.fp32()));
  auto attn = register_module("attn", std::make_shared<torch::nn::Module>());
  to_qkv = attn->register_module("to_qkv", Linear(c.dim, 3 * c.dim, true, p));
  proj = attn->register_module("proj", Linear(c.dim, c.dim, true, p));
  norm2 = register_module("norm2", Affine(c.dim, p.fp32()));
  auto mlp = register_module("mlp", std::make_shared<torch::nn::Module>());
  mlp0 = mlp->register_module("0", Linear(c.dim, c.mlp_dim, true, p));
  mlp2 = mlp->register_module("2", Linear(c.mlp_dim, c.dim, true, p));
}

torch::Tensor ClipBlockImpl::forward(const torch::Tensor& x) {
  const std::int64_t B = x.size(0), L = x.size(1), dim = x.size(2), d = dim / num_heads;
  const std::vector<torch::Tensor> qkv = to_qkv(layer_norm_f32(x, norm1->weight, norm1->bias, eps)).chunk(3, -1);
  auto heads = [&](const torch::Tensor& t) { return t.reshape({B, L, num_heads, d}); };
  const torch::Tensor a = attention(heads(qkv[0]), heads(qkv[1]), heads(qkv[2])).reshape({B, L, dim});
  torch::Tensor out = x + proj(a).to(x.scalar_type());
  const torch::Tensor h = mlp0(layer_norm_f32(out, norm2->weight, norm2->bias, eps));
  return out + mlp2(gelu_erf(h)).to(x.scalar_type());
}

ClipVisionImpl::ClipVisionImpl(const ClipVisionConfig& c, const ModelPlacement& p) : config_(c), placement_(p) {
  patch_embedding = register_module(
      "patch_embedding", Conv(std::int64_t(3), c.dim, std::vector<std::int64_t>{c.patch_size, c.patch_size}, false, p));
  cls_embedding = register_parameter("cls_embedding", uninitialized({1, 1, c.dim}, p.fp32()), false);
  pos_embedding = register_parameter("pos_embedding", uninitialized({1, c.tokens(), c.dim}, p.fp32()), false);
  pre_norm = register_module("pre_norm", Affine(c.dim, p.fp32()));
  transformer = register_module("transformer", torch::nn::ModuleList());
  for (std::int64_t i = 0; i < c.used_layers(); ++i) transformer->push_back(ClipBlock(c, p));
}

torch::Tensor ClipVisionImpl::encode(const torch::Tensor& image) {
  torch::NoGradGuard no_grad;
  if (image.dim() != 3 || image.size(0) != 3)
    throw Error(ErrorCode::kInvalidArgument, "CLIP input must be an RGB image [3, h, w]");
  namespace F = torch::nn::functional;
  const std::int64_t size = config_.image_size;
  torch::Tensor x = F::interpolate(image.to(placement_.device, torch::kFloat32).unsqueeze(0),
                                   F::InterpolateFuncOptions()
                                       .size(std::vector<std::int64_t>{size, size})
                                       .mode(torch::kBicubic)
                                       .align_corners(false));
  x = x.mul_(0.5).add_(0.5);
  const auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(placement_.device);
  const torch::Tensor mean =
      torch::tensor(std::vector<double>(config_.mean.begin(), config_.mean.end()), opts).view({1, 3, 1, 1});
  const torch::Tensor std =
      torch::tensor(std::vector<double>(config_.std.begin(), config_.std.end()), opts).view({1, 3, 1, 1});
  x = (x - mean) / std;
  // [1, dim, g, g] -> [1, g*g, dim]
  x = patch_embedding->forward(x, {config_.patch_size, config_.patch_size}, {0, 0}).flatten(2).transpose(1, 2);
  x = torch::cat({cls_embedding.to(x.scalar_type()).expand({x.size(0), 1, config_.dim}), x}, 1);
  x = x + pos_embedding.to(x.scalar_type());
  x = layer_norm_f32(x, pre_norm->weight, pre_norm->bias, config_.eps);
  for (const auto& block : *transformer) x = block->as<ClipBlockImpl>()->forward(x);
  return x.to(torch::kFloat32);
}

}  // namespace wan
