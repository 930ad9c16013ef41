#include "model/vae.h"

#include <torch/torch.h>

#include <cmath>

#include "model/vae_blocks.h"
#include "wan/error.h"

namespace wan {
namespace {

using namespace vae_blocks;  // CausalConv3d, ChannelRmsNorm, cached_conv, kCacheFrames

// The reference's latent normalisation constants (WanVAE.__init__).
const double kLatentMean[16] = {-0.7571, -0.7089, -0.9113, 0.1075,  -0.1745, 0.9653,  -0.1517, 1.5508,
                                0.4134,  -0.0715, 0.5517,  -0.3632, -0.1922, -0.9497, 0.2503,  -0.2921};
const double kLatentStd[16] = {2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
                               3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160};

struct ResidualBlockImpl : VaeLayer {
  ResidualBlockImpl(std::int64_t in, std::int64_t out, const ModelPlacement& o) {
    auto residual = register_module("residual", std::make_shared<torch::nn::Module>());
    norm0 = residual->register_module("0", ChannelRmsNorm(in, false, o));
    conv2 = residual->register_module("2", make_cc(in, out, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, o));
    norm3 = residual->register_module("3", ChannelRmsNorm(out, false, o));
    conv6 = residual->register_module("6", make_cc(out, out, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, o));
    if (in != out) shortcut = register_module("shortcut", make_cc(in, out, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, o));
  }
  torch::Tensor run(const torch::Tensor& x, VaeCache& cache) override {
    torch::Tensor h = shortcut ? shortcut->forward(x) : x;
    torch::Tensor y = torch::silu(norm0->forward(x));
    y = cached_conv(*conv2, y, cache);
    y = torch::silu(norm3->forward(y));
    y = cached_conv(*conv6, y, cache);
    return y + h;
  }
  ChannelRmsNorm norm0{nullptr}, norm3{nullptr};
  CausalConv3d conv2{nullptr}, conv6{nullptr}, shortcut{nullptr};
};

// Single-head attention over the pixels of each frame.
struct AttentionBlockImpl : VaeLayer {
  AttentionBlockImpl(std::int64_t dim, const ModelPlacement& o) {
    norm = register_module("norm", ChannelRmsNorm(dim, true, o));
    to_qkv = register_module("to_qkv", Conv(dim, 3 * dim, std::vector<std::int64_t>{1, 1}, true, o));
    proj = register_module("proj", Conv(dim, dim, std::vector<std::int64_t>{1, 1}, true, o));
  }
  torch::Tensor run(const torch::Tensor& x, VaeCache&) override {
    const std::int64_t b = x.size(0), c = x.size(1), t = x.size(2), h = x.size(3), w = x.size(4);
    // [B*T, C, H, W]
    torch::Tensor f = x.permute({0, 2, 1, 3, 4}).reshape({b * t, c, h, w});
    torch::Tensor qkv = to_qkv->forward(norm->forward(f), {1, 1}, {0, 0});
    // [B*T, HW, 3C] -> q, k, v [B*T, HW, 1, C]
    qkv = qkv.reshape({b * t, 3 * c, h * w}).permute({0, 2, 1});
    auto parts = qkv.chunk(3, -1);
    torch::Tensor a = attention(parts[0].unsqueeze(2), parts[1].unsqueeze(2), parts[2].unsqueeze(2));
    a = a.squeeze(2).permute({0, 2, 1}).reshape({b * t, c, h, w});
    torch::Tensor out = proj->forward(a, {1, 1}, {0, 0});
    return out.reshape({b, t, c, h, w}).permute({0, 2, 1, 3, 4}) + x;
  }
  ChannelRmsNorm norm{nullptr};
  Conv to_qkv{nullptr}, proj{nullptr};
};

enum class ResampleMode { kUp2d, kUp3d, kDown2d, kDown3d };

struct ResampleImpl : VaeLayer {
  ResampleImpl(std::int64_t dim, ResampleMode mode, const ModelPlacement& o) : mode_(mode) {
    auto resample = register_module("resample", std::make_shared<torch::nn::Module>());
    const bool up = mode == ResampleMode::kUp2d || mode == ResampleMode::kUp3d;
    conv = resample->register_module("1", Conv(dim, up ? dim / 2 : dim, std::vector<std::int64_t>{3, 3}, true, o));
    if (mode == ResampleMode::kUp3d)
      time_conv = register_module("time_conv", make_cc(dim, 2 * dim, {3, 1, 1}, {1, 1, 1}, {1, 0, 0}, o));
    if (mode == ResampleMode::kDown3d)
      time_conv = register_module("time_conv", make_cc(dim, dim, {3, 1, 1}, {2, 1, 1}, {0, 0, 0}, o));
  }

  torch::Tensor run(const torch::Tensor& x_in, VaeCache& cache) override {
    torch::Tensor x = x_in;
    const std::int64_t b = x.size(0), c = x.size(1);
    if (mode_ == ResampleMode::kUp3d) {
      VaeCache::Slot& slot = cache.take();
      if (slot.state == VaeCache::State::kEmpty) {
        slot.state = VaeCache::State::kRep;  // first latent frame: no temporal upsampling
      } else {
        const std::int64_t t = x.size(2);
        torch::Tensor cache_x =
            x.narrow(2, std::max<std::int64_t>(0, t - kCacheFrames), std::min(kCacheFrames, t)).clone();
        if (cache_x.size(2) < 2 && slot.state == VaeCache::State::kTensor)
          cache_x = torch::cat({slot.frames.narrow(2, slot.frames.size(2) - 1, 1), cache_x}, 2);
        if (cache_x.size(2) < 2 && slot.state == VaeCache::State::kRep)
          cache_x = torch::cat({torch::zeros_like(cache_x), cache_x}, 2);
        x = slot.state == VaeCache::State::kRep ? time_conv->forward(x) : time_conv->forward(x, slot.frames);
        slot.state = VaeCache::State::kTensor;
        slot.frames = cache_x;
        // [B, 2C, T, H, W] -> [B, C, 2T, H, W]: channel halves become consecutive frames
        const std::int64_t h = x.size(3), w = x.size(4);
        x = x.reshape({b, 2, c, t, h, w});
        x = torch::stack({x.select(1, 0), x.select(1, 1)}, 3).reshape({b, c, t * 2, h, w});
      }
    }
    // Spatial op per frame: [B*T, C, H, W]
    const std::int64_t t = x.size(2);
    torch::Tensor f = x.permute({0, 2, 1, 3, 4}).reshape({b * t, x.size(1), x.size(3), x.size(4)});
    if (mode_ == ResampleMode::kUp2d || mode_ == ResampleMode::kUp3d) {
      // nearest-exact x2 equals nearest x2 for an integer factor; done in float32 as the reference
      torch::Tensor up = torch::upsample_nearest2d(f.to(torch::kFloat32), {f.size(2) * 2, f.size(3) * 2});
      f = conv->forward(up.to(f.scalar_type()), {1, 1}, {1, 1});
    } else {
      f = conv->forward(torch::constant_pad_nd(f, {0, 1, 0, 1}, 0.0), {2, 2}, {0, 0});
    }
    x = f.reshape({b, t, f.size(1), f.size(2), f.size(3)}).permute({0, 2, 1, 3, 4});
    if (mode_ == ResampleMode::kDown3d) {
      VaeCache::Slot& slot = cache.take();
      if (slot.state == VaeCache::State::kEmpty) {
        slot.state = VaeCache::State::kTensor;  // first chunk: keep the frame, no temporal conv
        slot.frames = x.clone();
      } else {
        torch::Tensor cache_x = x.narrow(2, x.size(2) - 1, 1).clone();
        x = time_conv->forward(torch::cat({slot.frames.narrow(2, slot.frames.size(2) - 1, 1), x}, 2));
        slot.frames = cache_x;
      }
    }
    return x;
  }
  ResampleMode mode_;
  Conv conv{nullptr};
  CausalConv3d time_conv{nullptr};
};

}  // namespace

std::int64_t VaeConfig::temporal_stride() const {
  std::int64_t s = 1;
  for (bool t : temporal_downsample) s *= t ? 2 : 1;
  return s;
}

VaeConfig detect_vae_config(const TensorSource& src) {
  auto need = [&](const std::string& name) -> const std::vector<std::int64_t>& {
    if (!src.contains(name))
      throw Error(ErrorCode::kModelMismatch,
                  src.path() + ": not a Wan VAE checkpoint (tensor '" + name + "' is missing)");
    return src.info(name).shape;
  };
  VaeConfig c;
  c.dim = need("encoder.conv1.weight")[0];
  c.z_dim = need("conv2.weight")[0];
  c.dim_mult.clear();
  c.temporal_downsample.clear();
  // Walk encoder.downsamples: residual blocks, with a resample closing every stage but the last.
  std::int64_t res_in_stage = 0, stage_out = 0;
  c.num_res_blocks = 0;
  for (std::int64_t i = 0;; ++i) {
    const std::string p = "encoder.downsamples." + std::to_string(i) + ".";
    if (src.contains(p + "residual.0.gamma")) {
      ++res_in_stage;
      stage_out = need(p + "residual.2.weight")[0];
    } else if (src.contains(p + "resample.1.weight")) {
      c.dim_mult.push_back(stage_out / c.dim);
      c.temporal_downsample.push_back(src.contains(p + "time_conv.weight"));
      c.num_res_blocks = res_in_stage;
      res_in_stage = 0;
    } else {
      break;
    }
  }
  if (res_in_stage == 0) throw Error(ErrorCode::kModelMismatch, src.path() + ": VAE encoder has no residual blocks");
  c.dim_mult.push_back(stage_out / c.dim);
  if (c.num_res_blocks == 0) c.num_res_blocks = res_in_stage;
  return c;
}

WanVaeImpl::WanVaeImpl(const VaeConfig& c, const ModelPlacement& p) : config_(c), placement_(p) {
  if (c.z_dim != 16) throw Error(ErrorCode::kUnsupported, "VAE latent width must be 16 (the Wan2.1 VAE)");
  const ModelPlacement& o = p;
  const std::size_t stages = c.dim_mult.size();
  // Encoder: dims [dim, dim*m0, dim*m1, ...]
  std::vector<std::int64_t> dims{c.dim};
  for (std::int64_t m : c.dim_mult) dims.push_back(c.dim * m);
  auto enc = register_module("encoder", std::make_shared<torch::nn::Module>());
  encoder_.conv1 = enc->register_module("conv1", make_cc(3, dims[0], {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, o).ptr());
  auto down = enc->register_module("downsamples", std::make_shared<torch::nn::Module>());
  std::int64_t index = 0;
  auto add = [&](torch::nn::Module& parent, std::shared_ptr<VaeLayer> layer,
                 std::vector<std::shared_ptr<VaeLayer>>& list) {
    parent.register_module(std::to_string(index++), layer);
    list.push_back(layer);
  };
  for (std::size_t i = 0; i < stages; ++i) {
    std::int64_t in = dims[i];
    for (std::int64_t r = 0; r < c.num_res_blocks; ++r) {
      add(*down, std::make_shared<ResidualBlockImpl>(in, dims[i + 1], o), encoder_.layers);
      in = dims[i + 1];
    }
    if (i + 1 != stages)
      add(*down,
          std::make_shared<ResampleImpl>(dims[i + 1],
                                         c.temporal_downsample[i] ? ResampleMode::kDown3d : ResampleMode::kDown2d, o),
          encoder_.layers);
  }
  const std::int64_t top = dims.back();
  auto enc_mid = enc->register_module("middle", std::make_shared<torch::nn::Module>());
  index = 0;
  add(*enc_mid, std::make_shared<ResidualBlockImpl>(top, top, o), encoder_.layers);
  add(*enc_mid, std::make_shared<AttentionBlockImpl>(top, o), encoder_.layers);
  add(*enc_mid, std::make_shared<ResidualBlockImpl>(top, top, o), encoder_.layers);
  auto enc_head = enc->register_module("head", std::make_shared<torch::nn::Module>());
  encoder_.head_norm = enc_head->register_module("0", ChannelRmsNorm(top, false, o).ptr());
  encoder_.head_conv =
      enc_head->register_module("2", make_cc(top, 2 * c.z_dim, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, o).ptr());

  conv1 = register_module("conv1", Conv(2 * c.z_dim, 2 * c.z_dim, std::vector<std::int64_t>{1, 1, 1}, true, o));
  conv2 = register_module("conv2", Conv(c.z_dim, c.z_dim, std::vector<std::int64_t>{1, 1, 1}, true, o));

  // Decoder: dims [dim*m_last, dim*m_last, ..., dim*m0]
  std::vector<std::int64_t> ddims{c.dim * c.dim_mult.back()};
  for (std::size_t i = stages; i-- > 0;) ddims.push_back(c.dim * c.dim_mult[i]);
  auto dec = register_module("decoder", std::make_shared<torch::nn::Module>());
  decoder_.conv1 = dec->register_module("conv1", make_cc(c.z_dim, ddims[0], {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, o).ptr());
  auto dec_mid = dec->register_module("middle", std::make_shared<torch::nn::Module>());
  index = 0;
  add(*dec_mid, std::make_shared<ResidualBlockImpl>(ddims[0], ddims[0], o), decoder_.layers);
  add(*dec_mid, std::make_shared<AttentionBlockImpl>(ddims[0], o), decoder_.layers);
  add(*dec_mid, std::make_shared<ResidualBlockImpl>(ddims[0], ddims[0], o), decoder_.layers);
  auto up = dec->register_module("upsamples", std::make_shared<torch::nn::Module>());
  index = 0;
  for (std::size_t i = 0; i < stages; ++i) {
    std::int64_t in = ddims[i];
    if (i >= 1 && i <= 3) in /= 2;  // the previous upsample halved the channels
    for (std::int64_t r = 0; r < c.num_res_blocks + 1; ++r) {
      add(*up, std::make_shared<ResidualBlockImpl>(in, ddims[i + 1], o), decoder_.layers);
      in = ddims[i + 1];
    }
    if (i + 1 != stages) {
      const bool temporal = c.temporal_downsample[stages - 2 - i];
      add(*up, std::make_shared<ResampleImpl>(ddims[i + 1], temporal ? ResampleMode::kUp3d : ResampleMode::kUp2d, o),
          decoder_.layers);
    }
  }
  auto dec_head = dec->register_module("head", std::make_shared<torch::nn::Module>());
  decoder_.head_norm = dec_head->register_module("0", ChannelRmsNorm(ddims.back(), false, o).ptr());
  decoder_.head_conv =
      dec_head->register_module("2", make_cc(ddims.back(), 3, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, o).ptr());

  mean_ = torch::tensor(std::vector<double>(kLatentMean, kLatentMean + 16), torch::kFloat32).to(p.device);
  inv_std_ = 1.0 / torch::tensor(std::vector<double>(kLatentStd, kLatentStd + 16), torch::kFloat32).to(p.device);
}

torch::Tensor WanVaeImpl::run_stack(Stack& s, const torch::Tensor& x_in, VaeCache& cache) {
  auto& conv1_m = static_cast<CausalConv3dImpl&>(*s.conv1);
  torch::Tensor x = cached_conv(conv1_m, x_in, cache);
  for (auto& layer : s.layers) x = layer->run(x, cache);
  x = torch::silu(static_cast<ChannelRmsNormImpl&>(*s.head_norm).forward(x));
  return cached_conv(static_cast<CausalConv3dImpl&>(*s.head_conv), x, cache);
}

torch::Tensor WanVaeImpl::encode(const torch::Tensor& video) {
  torch::NoGradGuard no_grad;
  const std::int64_t stride = config_.spatial_stride();
  if (video.dim() != 4 || video.size(0) != 3)
    throw Error(ErrorCode::kInvalidArgument, "VAE encode expects a video [3, T, H, W]");
  const std::int64_t T = video.size(1);
  if ((T - 1) % 4 != 0)
    throw Error(ErrorCode::kInvalidArgument, "VAE encode needs 4n+1 frames, got " + std::to_string(T));
  if (video.size(2) % stride || video.size(3) % stride)
    throw Error(ErrorCode::kInvalidArgument,
                "VAE encode needs height and width divisible by " + std::to_string(stride));
  const torch::Tensor x = video.unsqueeze(0).to(placement_.device).to(placement_.compute_dtype);
  VaeCache cache;
  std::vector<torch::Tensor> outs;
  for (std::int64_t i = 0; i < 1 + (T - 1) / 4; ++i) {
    cache.next = 0;
    const torch::Tensor chunk = i == 0 ? x.narrow(2, 0, 1) : x.narrow(2, 1 + 4 * (i - 1), 4);
    outs.push_back(run_stack(encoder_, chunk, cache));
  }
  torch::Tensor h = conv1->forward(torch::cat(outs, 2), {1, 1, 1}, {0, 0, 0});
  torch::Tensor mu = h.narrow(1, 0, config_.z_dim).to(torch::kFloat32);
  mu = (mu - mean_.view({1, -1, 1, 1, 1})) * inv_std_.view({1, -1, 1, 1, 1});
  return mu.squeeze(0);
}

torch::Tensor WanVaeImpl::decode(const torch::Tensor& latent, const std::function<void(int, int)>& on_frame) {
  torch::NoGradGuard no_grad;
  if (latent.dim() != 4 || latent.size(0) != config_.z_dim)
    throw Error(ErrorCode::kInvalidArgument, "VAE decode expects a latent [16, F, h, w]");
  torch::Tensor z = latent.unsqueeze(0).to(placement_.device).to(torch::kFloat32);
  z = z / inv_std_.view({1, -1, 1, 1, 1}) + mean_.view({1, -1, 1, 1, 1});
  const torch::Tensor x = conv2->forward(z, {1, 1, 1}, {0, 0, 0});
  VaeCache cache;
  std::vector<torch::Tensor> outs;
  const std::int64_t frames = x.size(2);
  for (std::int64_t i = 0; i < frames; ++i) {
    cache.next = 0;
    outs.push_back(run_stack(decoder_, x.narrow(2, i, 1), cache).to(torch::kFloat32));
    if (on_frame) on_frame(static_cast<int>(i + 1), static_cast<int>(frames));
  }
  return torch::cat(outs, 2).clamp(-1.0, 1.0).squeeze(0);
}

}  // namespace wan
