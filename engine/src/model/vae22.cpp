#include "model/vae22.h"

#include <torch/torch.h>

#include <cmath>
#include <string>

#include "core/cpu_allocator.h"
#include "model/vae_blocks.h"
#include "wan/error.h"
#include "weights/loader.h"

// Line numbers below are those of wan/modules/vae2_2.py in Wan-Video/Wan2.2 at commit 42bf4cf.

namespace wan {

// Wan2_2_VAE.__init__, vae2_2.py:904-957 (mean) and 958-1011 (std).
const std::array<double, 48> kVae22LatentMean = {
    -0.2289, -0.0052, -0.1323, -0.2339, -0.2799, 0.0174,  0.1838,  0.1557,  -0.1382, 0.0542,  0.2813,  0.0891,
    0.1570,  -0.0098, 0.0375,  -0.1825, -0.2246, -0.1207, -0.0698, 0.5109,  0.2665,  -0.2108, -0.2158, 0.2502,
    -0.2055, -0.0322, 0.1109,  0.1567,  -0.0729, 0.0899,  -0.2799, -0.1230, -0.0313, -0.1649, 0.0117,  0.0723,
    -0.2839, -0.2083, -0.0520, 0.3748,  0.0152,  0.1957,  0.1433,  -0.2944, 0.3573,  -0.0548, -0.1681, -0.0667};
const std::array<double, 48> kVae22LatentStd = {
    0.4765, 1.0364, 0.4514, 1.1677, 0.5313, 0.4990, 0.4818, 0.5013, 0.8158, 1.0344, 0.5894, 1.0901,
    0.6885, 0.6165, 0.8454, 0.4978, 0.5759, 0.3523, 0.7135, 0.6804, 0.5833, 1.4146, 0.8986, 0.5659,
    0.7069, 0.5338, 0.4889, 0.4917, 0.4069, 0.4999, 0.6866, 0.4093, 0.5709, 0.6065, 0.6415, 0.4944,
    0.5726, 1.2042, 0.5458, 1.6887, 0.3971, 1.0600, 0.3943, 0.5537, 0.5444, 0.4089, 0.7468, 0.7744};

namespace {

using namespace vae_blocks;                  // CausalConv3d, ChannelRmsNorm, cached_conv, kCacheFrames
constexpr std::int64_t kPatch = 2;           // patchify(x, patch_size=2) (vae2_2.py:785, 837)
constexpr std::int64_t kPixelChannels = 12;  // 3 colours x 2 x 2 (Encoder3d.conv1 / Decoder3d.head, 525, 669)

// ResidualBlock (vae2_2.py:193-235): norm, SiLU, conv 3x3x3, norm, SiLU, conv 3x3x3, plus the input
// (through a 1x1x1 conv when the width changes).
struct ResidualBlockImpl : Vae22Layer {
  ResidualBlockImpl(std::int64_t in, std::int64_t out, const ModelPlacement& o) {
    auto residual = register_module("residual", std::make_shared<torch::nn::Module>());
    norm0 = residual->register_module("0", ChannelRmsNorm(in, false, o));
    conv2 = residual->register_module("2", make_cc(in, out, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, o));
    norm3 = residual->register_module("3", ChannelRmsNorm(out, false, o));
    conv6 = residual->register_module("6", make_cc(out, out, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, o));
    if (in != out) shortcut = register_module("shortcut", make_cc(in, out, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, o));
  }
  torch::Tensor run(const torch::Tensor& x, VaeCache& cache, bool) override {
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

// AttentionBlock (vae2_2.py:238-277): single-head attention over the pixels of each frame.
struct AttentionBlockImpl : Vae22Layer {
  AttentionBlockImpl(std::int64_t dim, const ModelPlacement& o) {
    norm = register_module("norm", ChannelRmsNorm(dim, true, o));
    to_qkv = register_module("to_qkv", Conv(dim, 3 * dim, std::vector<std::int64_t>{1, 1}, true, o));
    proj = register_module("proj", Conv(dim, dim, std::vector<std::int64_t>{1, 1}, true, o));
  }
  torch::Tensor run(const torch::Tensor& x, VaeCache&, bool) override {
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

// Resample (vae2_2.py:71-168). Unlike Wan2.1's, the upsampling conv keeps the channel count.
struct ResampleImpl : torch::nn::Module {
  ResampleImpl(std::int64_t dim, ResampleMode mode, const ModelPlacement& o) : mode_(mode) {
    auto resample = register_module("resample", std::make_shared<torch::nn::Module>());
    conv = resample->register_module("1", Conv(dim, dim, std::vector<std::int64_t>{3, 3}, true, o));
    if (mode == ResampleMode::kUp3d)
      time_conv = register_module("time_conv", make_cc(dim, 2 * dim, {3, 1, 1}, {1, 1, 1}, {1, 0, 0}, o));
    if (mode == ResampleMode::kDown3d)
      time_conv = register_module("time_conv", make_cc(dim, dim, {3, 1, 1}, {2, 1, 1}, {0, 0, 0}, o));
  }

  torch::Tensor run(const torch::Tensor& x_in, VaeCache& cache) {
    torch::Tensor x = x_in;
    const std::int64_t b = x.size(0), c = x.size(1);
    if (mode_ == ResampleMode::kUp3d) {
      // vae2_2.py:114-151: the first chunk only marks the slot "Rep" (no temporal upsampling: one frame
      // stays one); later chunks double their frames, the first of them with zero frames in front.
      VaeCache::Slot& slot = cache.take();
      if (slot.state == VaeCache::State::kEmpty) {
        slot.state = VaeCache::State::kRep;
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
        // [B, 2C, T, H, W] -> [B, C, 2T, H, W]: the channel halves become consecutive frames
        const std::int64_t h = x.size(3), w = x.size(4);
        x = x.reshape({b, 2, c, t, h, w});
        x = torch::stack({x.select(1, 0), x.select(1, 1)}, 3).reshape({b, c, t * 2, h, w});
      }
    }
    // The spatial op per frame: [B*T, C, H, W]
    const std::int64_t t = x.size(2);
    torch::Tensor f = x.permute({0, 2, 1, 3, 4}).reshape({b * t, x.size(1), x.size(3), x.size(4)});
    if (mode_ == ResampleMode::kUp2d || mode_ == ResampleMode::kUp3d) {
      // nearest-exact x2 is nearest x2 for an integer factor; in float32 as the reference's Upsample (62-68)
      torch::Tensor up = torch::upsample_nearest2d(f.to(torch::kFloat32), {f.size(2) * 2, f.size(3) * 2});
      f = conv->forward(up.to(f.scalar_type()), {1, 1}, {1, 1});
    } else {
      // ZeroPad2d((0, 1, 0, 1)): one zero column on the right, one zero row at the bottom
      f = conv->forward(torch::constant_pad_nd(f, {0, 1, 0, 1}, 0.0), {2, 2}, {0, 0});
    }
    x = f.reshape({b, t, f.size(1), f.size(2), f.size(3)}).permute({0, 2, 1, 3, 4});
    if (mode_ == ResampleMode::kDown3d) {
      // vae2_2.py:157-168: the first chunk is kept whole, without the temporal conv; later chunks get
      // the previous chunk's last frame in front and the stride-2 conv halves their frames.
      VaeCache::Slot& slot = cache.take();
      if (slot.state == VaeCache::State::kEmpty) {
        slot.state = VaeCache::State::kTensor;
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
TORCH_MODULE(Resample);

// AvgDown3D (vae2_2.py:316-367): x [B, C, T, H, W] -> [B, out, T/ft, H/fs, W/fs]. T is padded in front
// with zero frames to a multiple of ft; the C*ft*fs*fs values of each output cell (channel-major, then
// time, row, column offsets) are averaged in consecutive groups of C*ft*fs*fs/out.
torch::Tensor avg_down(const torch::Tensor& x_in, std::int64_t out, std::int64_t ft, std::int64_t fs) {
  const std::int64_t pad_t = (ft - x_in.size(2) % ft) % ft;
  const torch::Tensor x = pad_t ? torch::constant_pad_nd(x_in, {0, 0, 0, 0, pad_t, 0}, 0.0) : x_in;
  const std::int64_t b = x.size(0), c = x.size(1), t = x.size(2) / ft, h = x.size(3) / fs, w = x.size(4) / fs;
  const std::int64_t group = c * ft * fs * fs / out;
  // [B, C, T', ft, H', fs, W', fs] -> [B, C, ft, fs, fs, T', H', W'] -> [B, out, group, T', H', W']
  return x.reshape({b, c, t, ft, h, fs, w, fs})
      .permute({0, 1, 3, 5, 7, 2, 4, 6})
      .reshape({b, out, group, t, h, w})
      .mean(2);
}

// DupUp3D (vae2_2.py:370-412): x [B, C, T, H, W] -> [B, out, T*ft, H*fs, W*fs], each input channel
// repeated out*ft*fs*fs/C times and the copies spread over (time, row, column) offsets. The decoder's
// first chunk drops the first ft-1 frames (410-411): one latent frame gives one video frame there, as
// the "Rep" Resample of the main path does.
torch::Tensor dup_up(const torch::Tensor& x, std::int64_t out, std::int64_t ft, std::int64_t fs, bool first_chunk) {
  const std::int64_t b = x.size(0), c = x.size(1), t = x.size(2), h = x.size(3), w = x.size(4);
  const std::int64_t repeats = out * ft * fs * fs / c;
  // [B, C*repeats, T, H, W] = [B, out, ft, fs, fs, T, H, W] -> [B, out, T, ft, H, fs, W, fs]
  torch::Tensor y = x.repeat_interleave(repeats, 1)
                        .reshape({b, out, ft, fs, fs, t, h, w})
                        .permute({0, 1, 5, 2, 6, 3, 7, 4})
                        .reshape({b, out, t * ft, h * fs, w * fs});
  if (first_chunk && ft > 1) y = y.narrow(2, ft - 1, y.size(2) - (ft - 1));
  return y;
}

// Down_ResidualBlock (vae2_2.py:415-452): residual blocks, then the stage's downsample, plus the
// AvgDown3D of the stage input. Registered children: downsamples.{0..n-1} residual blocks, downsamples.n
// the Resample.
struct DownStageImpl : Vae22Layer {
  DownStageImpl(std::int64_t in, std::int64_t out, std::int64_t res_blocks, bool temporal, bool down,
                const ModelPlacement& o)
      : out_(out), ft_(temporal ? 2 : 1), fs_(down ? 2 : 1) {
    // AvgDown3D averages groups of in * ft * fs^2 / out channels (vae2_2.py:333-336).
    if ((in * ft_ * fs_ * fs_) % out != 0)
      throw Error(ErrorCode::kModelMismatch, "Wan2.2 VAE: an encoder stage of width " + std::to_string(in) + " -> " +
                                                 std::to_string(out) + " does not fit its average shortcut");
    auto list = register_module("downsamples", std::make_shared<torch::nn::Module>());
    for (std::int64_t r = 0; r < res_blocks; ++r) {
      blocks.push_back(list->register_module(std::to_string(r), std::make_shared<ResidualBlockImpl>(in, out, o)));
      in = out;
    }
    if (down)
      resample = list->register_module(std::to_string(res_blocks),
                                       Resample(out, temporal ? ResampleMode::kDown3d : ResampleMode::kDown2d, o));
  }
  torch::Tensor run(const torch::Tensor& x, VaeCache& cache, bool) override {
    torch::Tensor y = x;
    for (auto& block : blocks) y = block->run(y, cache, false);
    if (resample) y = resample->run(y, cache);
    return y + avg_down(x, out_, ft_, fs_);
  }
  std::int64_t out_, ft_, fs_;
  std::vector<std::shared_ptr<ResidualBlockImpl>> blocks;
  Resample resample{nullptr};
};

// Up_ResidualBlock (vae2_2.py:455-497): residual blocks, then the stage's upsample, plus the DupUp3D of
// the stage input when the stage upsamples. Children: upsamples.{0..n-1} residual blocks, upsamples.n
// the Resample.
struct UpStageImpl : Vae22Layer {
  UpStageImpl(std::int64_t in, std::int64_t out, std::int64_t res_blocks, bool temporal, bool up,
              const ModelPlacement& o)
      : out_(out), ft_(temporal ? 2 : 1), fs_(up ? 2 : 1), up_(up) {
    // DupUp3D repeats each channel out * ft * fs^2 / in times (vae2_2.py:388-391).
    if (up && (out * ft_ * fs_ * fs_) % in != 0)
      throw Error(ErrorCode::kModelMismatch, "Wan2.2 VAE: a decoder stage of width " + std::to_string(in) + " -> " +
                                                 std::to_string(out) + " does not fit its duplicating shortcut");
    auto list = register_module("upsamples", std::make_shared<torch::nn::Module>());
    for (std::int64_t r = 0; r < res_blocks; ++r) {
      blocks.push_back(list->register_module(std::to_string(r), std::make_shared<ResidualBlockImpl>(in, out, o)));
      in = out;
    }
    if (up)
      resample = list->register_module(std::to_string(res_blocks),
                                       Resample(out, temporal ? ResampleMode::kUp3d : ResampleMode::kUp2d, o));
  }
  torch::Tensor run(const torch::Tensor& x, VaeCache& cache, bool first_chunk) override {
    torch::Tensor y = x;
    for (auto& block : blocks) y = block->run(y, cache, false);
    if (!up_) return y;
    y = resample->run(y, cache);
    return y + dup_up(x, out_, ft_, fs_, first_chunk);
  }
  std::int64_t out_, ft_, fs_;
  bool up_;
  std::vector<std::shared_ptr<ResidualBlockImpl>> blocks;
  Resample resample{nullptr};
};

// patchify (vae2_2.py:280-296), "b c f (h q) (w r) -> b (c r q) f h w": [B, C, F, 2h, 2w] -> [B, 4C, F, h, w],
// channel c*4 + r*2 + q holding x[c, :, q::2, r::2].
torch::Tensor patchify(const torch::Tensor& x) {
  const std::int64_t b = x.size(0), c = x.size(1), f = x.size(2), h = x.size(3) / kPatch, w = x.size(4) / kPatch;
  // [B, C, F, h, q, w, r] -> [B, C, r, q, F, h, w]
  return x.reshape({b, c, f, h, kPatch, w, kPatch})
      .permute({0, 1, 6, 4, 2, 3, 5})
      .reshape({b, c * kPatch * kPatch, f, h, w});
}

// unpatchify (vae2_2.py:299-313), "b (c r q) f h w -> b c f (h q) (w r)": the inverse of patchify.
torch::Tensor unpatchify(const torch::Tensor& x) {
  const std::int64_t b = x.size(0), c = x.size(1) / (kPatch * kPatch), f = x.size(2), h = x.size(3), w = x.size(4);
  // [B, C, r, q, F, h, w] -> [B, C, F, h, q, w, r]
  return x.reshape({b, c, kPatch, kPatch, f, h, w})
      .permute({0, 1, 4, 5, 3, 6, 2})
      .reshape({b, c, f, h * kPatch, w * kPatch});
}

std::string shape_of(const torch::Tensor& t) { return shape_text(t.sizes().vec()); }

}  // namespace

std::int64_t Vae22Config::temporal_stride() const {
  std::int64_t s = 1;
  for (bool t : temporal_downsample) s *= t ? 2 : 1;
  return s;
}

bool is_wan22_vae(const TensorSource& src) {
  try {
    if (!src.contains("encoder.conv1.weight") || !src.contains("decoder.upsamples.0.upsamples.0.residual.0.gamma"))
      return false;
    const std::vector<std::int64_t>& shape = src.info("encoder.conv1.weight").shape;
    return shape.size() == 5 && shape[1] == kPixelChannels;
  } catch (const std::exception&) {
    return false;
  }
}

Vae22Config detect_vae22_config(const TensorSource& src) {
  const std::string not_vae = src.path() + ": not a Wan2.2 VAE checkpoint";
  auto need = [&](const std::string& name) -> const std::vector<std::int64_t>& {
    if (!src.contains(name)) throw Error(ErrorCode::kModelMismatch, not_vae + " (tensor '" + name + "' is missing)");
    return src.info(name).shape;
  };
  const std::vector<std::int64_t>& first = need("encoder.conv1.weight");
  if (first.size() != 5 || first[1] != kPixelChannels)
    throw Error(ErrorCode::kModelMismatch, not_vae + ": encoder.conv1.weight is " + shape_text(first) +
                                               ", the Wan2.2 VAE's first conv takes 12 = 3x2x2 patchified channels" +
                                               (first.size() == 5 && first[1] == 3 ? " (this is a Wan2.1 VAE)" : ""));
  if (!src.contains("decoder.upsamples.0.upsamples.0.residual.0.gamma"))
    throw Error(ErrorCode::kModelMismatch, not_vae + " (no decoder.upsamples.0.upsamples.* Up_ResidualBlock stages)");
  Vae22Config c;
  c.dim = first[0];
  c.z_dim = need("conv2.weight")[0];
  c.dim_mult.clear();
  c.temporal_downsample.clear();
  c.num_res_blocks = 0;
  // encoder.downsamples.{i}: a Down_ResidualBlock per stage: residual blocks, then a Resample on every
  // stage but the last (with a time_conv where the stage halves the frames).
  for (std::int64_t i = 0;; ++i) {
    const std::string p = "encoder.downsamples." + std::to_string(i) + ".downsamples.";
    std::int64_t blocks = 0;
    while (src.contains(p + std::to_string(blocks) + ".residual.0.gamma")) ++blocks;
    if (blocks == 0) break;
    if (i == 0) c.num_res_blocks = blocks;
    if (blocks != c.num_res_blocks)
      throw Error(ErrorCode::kModelMismatch, not_vae + ": encoder stage " + std::to_string(i) + " has " +
                                                 std::to_string(blocks) + " residual blocks, stage 0 has " +
                                                 std::to_string(c.num_res_blocks));
    const std::int64_t width = need(p + std::to_string(blocks - 1) + ".residual.2.weight")[0];
    if (width % c.dim != 0)
      throw Error(ErrorCode::kModelMismatch, not_vae + ": encoder stage " + std::to_string(i) + " is " +
                                                 std::to_string(width) + " wide, not a multiple of " +
                                                 std::to_string(c.dim));
    c.dim_mult.push_back(width / c.dim);
    const std::string resample = p + std::to_string(blocks);
    if (src.contains(resample + ".resample.1.weight"))
      c.temporal_downsample.push_back(src.contains(resample + ".time_conv.weight"));
    else if (src.contains("encoder.downsamples." + std::to_string(i + 1) + ".downsamples.0.residual.0.gamma"))
      throw Error(ErrorCode::kModelMismatch,
                  not_vae + ": encoder stage " + std::to_string(i) + " has no downsample but is not the last");
  }
  if (c.dim_mult.size() < 2 || c.temporal_downsample.size() + 1 != c.dim_mult.size())
    throw Error(ErrorCode::kModelMismatch, not_vae + ": the encoder has " + std::to_string(c.dim_mult.size()) +
                                               " stages and " + std::to_string(c.temporal_downsample.size()) +
                                               " downsamples (expected stages - 1 >= 1)");
  // The decoder's last stage is dec_dim * dim_mult[0] wide (Decoder3d dims, vae2_2.py:637).
  const std::int64_t dec_out = need("decoder.head.0.gamma")[0];
  if (dec_out % c.dim_mult.front() != 0)
    throw Error(ErrorCode::kModelMismatch, not_vae + ": decoder.head.0.gamma is " + std::to_string(dec_out) +
                                               " wide, not a multiple of " + std::to_string(c.dim_mult.front()));
  c.dec_dim = dec_out / c.dim_mult.front();
  return c;
}

Wan22VaeImpl::Wan22VaeImpl(const Vae22Config& c, const ModelPlacement& p) : config_(c), placement_(p) {
  const std::size_t stages = c.dim_mult.size();
  if (stages < 2 || c.temporal_downsample.size() + 1 != stages || c.temporal_stride() != 4)
    throw Error(ErrorCode::kUnsupported,
                "Wan2.2 VAE: needs at least 2 stages and a temporal stride of 4 (the official 1 + 4k frame chunking)");
  if (c.z_dim != static_cast<std::int64_t>(kVae22LatentMean.size()))
    throw Error(ErrorCode::kUnsupported,
                "Wan2.2 VAE: latent width must be 48, the file's is " + std::to_string(c.z_dim));
  const ModelPlacement& o = p;

  // Encoder3d (vae2_2.py:500-557): widths [dim, dim*m0, dim*m1, ...]
  std::vector<std::int64_t> dims{c.dim};
  for (std::int64_t m : c.dim_mult) dims.push_back(c.dim * m);
  auto enc = register_module("encoder", std::make_shared<torch::nn::Module>());
  encoder_.conv1 = enc->register_module("conv1", make_cc(kPixelChannels, dims[0], {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, o));
  auto down = enc->register_module("downsamples", std::make_shared<torch::nn::Module>());
  for (std::size_t i = 0; i < stages; ++i) {
    const bool last = i + 1 == stages;
    auto stage = std::make_shared<DownStageImpl>(dims[i], dims[i + 1], c.num_res_blocks,
                                                 !last && c.temporal_downsample[i], !last, o);
    encoder_.layers.push_back(down->register_module(std::to_string(i), stage));
  }
  const std::int64_t top = dims.back();
  auto enc_mid = enc->register_module("middle", std::make_shared<torch::nn::Module>());
  encoder_.layers.push_back(enc_mid->register_module("0", std::make_shared<ResidualBlockImpl>(top, top, o)));
  encoder_.layers.push_back(enc_mid->register_module("1", std::make_shared<AttentionBlockImpl>(top, o)));
  encoder_.layers.push_back(enc_mid->register_module("2", std::make_shared<ResidualBlockImpl>(top, top, o)));
  auto enc_head = enc->register_module("head", std::make_shared<torch::nn::Module>());
  encoder_.head_norm = enc_head->register_module("0", ChannelRmsNorm(top, false, o));
  encoder_.head_conv = enc_head->register_module("2", make_cc(top, 2 * c.z_dim, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, o));

  // WanVAE_ conv1 / conv2 (vae2_2.py:766-767): 1x1x1, no temporal extent, so plain convs.
  conv1 = register_module("conv1", Conv(2 * c.z_dim, 2 * c.z_dim, std::vector<std::int64_t>{1, 1, 1}, true, o));
  conv2 = register_module("conv2", Conv(c.z_dim, c.z_dim, std::vector<std::int64_t>{1, 1, 1}, true, o));

  // Decoder3d (vae2_2.py:616-670): widths [dec*m_last, dec*m_last, ..., dec*m0]; stage i upsamples in time
  // where encoder stage (stages-2-i) downsampled (temperal_upsample = temperal_downsample[::-1], 754).
  std::vector<std::int64_t> ddims{c.dec_dim * c.dim_mult.back()};
  for (std::size_t i = stages; i-- > 0;) ddims.push_back(c.dec_dim * c.dim_mult[i]);
  auto dec = register_module("decoder", std::make_shared<torch::nn::Module>());
  decoder_.conv1 = dec->register_module("conv1", make_cc(c.z_dim, ddims[0], {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, o));
  auto dec_mid = dec->register_module("middle", std::make_shared<torch::nn::Module>());
  decoder_.layers.push_back(dec_mid->register_module("0", std::make_shared<ResidualBlockImpl>(ddims[0], ddims[0], o)));
  decoder_.layers.push_back(dec_mid->register_module("1", std::make_shared<AttentionBlockImpl>(ddims[0], o)));
  decoder_.layers.push_back(dec_mid->register_module("2", std::make_shared<ResidualBlockImpl>(ddims[0], ddims[0], o)));
  auto up = dec->register_module("upsamples", std::make_shared<torch::nn::Module>());
  for (std::size_t i = 0; i < stages; ++i) {
    const bool last = i + 1 == stages;
    const bool temporal = !last && c.temporal_downsample[stages - 2 - i];
    auto stage = std::make_shared<UpStageImpl>(ddims[i], ddims[i + 1], c.num_res_blocks + 1, temporal, !last, o);
    decoder_.layers.push_back(up->register_module(std::to_string(i), stage));
  }
  auto dec_head = dec->register_module("head", std::make_shared<torch::nn::Module>());
  decoder_.head_norm = dec_head->register_module("0", ChannelRmsNorm(ddims.back(), false, o));
  decoder_.head_conv =
      dec_head->register_module("2", make_cc(ddims.back(), kPixelChannels, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, o));

  // Wan2_2_VAE keeps scale = [mean, 1/std] as float32 tensors (vae2_2.py:1012).
  mean_ = torch::tensor(std::vector<double>(kVae22LatentMean.begin(), kVae22LatentMean.end()), torch::kFloat32)
              .to(p.device);
  inv_std_ =
      1.0 /
      torch::tensor(std::vector<double>(kVae22LatentStd.begin(), kVae22LatentStd.end()), torch::kFloat32).to(p.device);
}

torch::Tensor Wan22VaeImpl::run_stack(Stack& s, const torch::Tensor& x_in, VaeCache& cache, bool first_chunk) {
  // Encoder3d.forward / Decoder3d.forward (vae2_2.py:559-613, 672-723)
  torch::Tensor x = cached_conv(static_cast<CausalConv3dImpl&>(*s.conv1), x_in, cache);
  for (auto& layer : s.layers) x = layer->run(x, cache, first_chunk);
  x = torch::silu(static_cast<ChannelRmsNormImpl&>(*s.head_norm).forward(x));
  return cached_conv(static_cast<CausalConv3dImpl&>(*s.head_conv), x, cache);
}

torch::Tensor Wan22VaeImpl::encode(const torch::Tensor& video) {
  torch::NoGradGuard no_grad;
  const std::int64_t stride = config_.spatial_stride();
  if (video.dim() != 4 || video.size(0) != 3)
    throw Error(ErrorCode::kInvalidArgument, "Wan2.2 VAE encode expects a video [3, T, H, W], got " + shape_of(video));
  const std::int64_t frames = video.size(1);
  if (frames < 1 || (frames - 1) % 4 != 0)
    throw Error(ErrorCode::kInvalidArgument, "Wan2.2 VAE encode needs 4n+1 frames, got " + std::to_string(frames));
  if (video.size(2) < stride || video.size(3) < stride || video.size(2) % stride || video.size(3) % stride)
    throw Error(ErrorCode::kInvalidArgument, "Wan2.2 VAE encode needs a height and width divisible by " +
                                                 std::to_string(stride) + ", got " + shape_of(video));
  // WanVAE_.encode (vae2_2.py:783-810): frame 0, then chunks of 4 frames through the encoder with the
  // caches. The 2x2 patchify acts on each frame alone, so each chunk is patchified (and moved to the
  // device) on its own rather than the whole video at once.
  VaeCache cache;
  std::vector<torch::Tensor> outs;
  for (std::int64_t i = 0; i < 1 + (frames - 1) / 4; ++i) {
    cache.next = 0;
    const torch::Tensor chunk = i == 0 ? video.narrow(1, 0, 1) : video.narrow(1, 1 + 4 * (i - 1), 4);
    const torch::Tensor x = patchify(chunk.unsqueeze(0).to(placement_.device, placement_.compute_dtype));
    outs.push_back(run_stack(encoder_, x, cache, false));
  }
  const torch::Tensor h = conv1->forward(torch::cat(outs, 2), {1, 1, 1}, {0, 0, 0});
  outs.clear();
  // mu = the first z_dim channels (log_var unused); (mu - mean) * (1/std) (vae2_2.py:803-808)
  torch::Tensor mu = h.narrow(1, 0, config_.z_dim).to(torch::kFloat32);
  mu = (mu - mean_.view({1, -1, 1, 1, 1})) * inv_std_.view({1, -1, 1, 1, 1});
  return mu.squeeze(0);
}

torch::Tensor Wan22VaeImpl::decode(const torch::Tensor& latent, const std::function<void(int, int)>& on_frame) {
  torch::NoGradGuard no_grad;
  if (latent.dim() != 4 || latent.size(0) != config_.z_dim || latent.size(1) < 1 || latent.size(2) < 1 ||
      latent.size(3) < 1)
    throw Error(ErrorCode::kInvalidArgument, "Wan2.2 VAE decode expects a latent [" + std::to_string(config_.z_dim) +
                                                 ", F, h, w], got " + shape_of(latent));
  // z / (1/std) + mean (vae2_2.py:814-818), then conv2 on all latent frames (819-820)
  torch::Tensor z = latent.unsqueeze(0).to(placement_.device, torch::kFloat32);
  z = z / inv_std_.view({1, -1, 1, 1, 1}) + mean_.view({1, -1, 1, 1, 1});
  const torch::Tensor x = conv2->forward(z, {1, 1, 1}, {0, 0, 0});
  z = torch::Tensor();
  const std::int64_t frames = x.size(2), stride = config_.spatial_stride();
  const std::int64_t video_frames = 1 + config_.temporal_stride() * (frames - 1);
  torch::Tensor video = torch::empty({3, video_frames, latent.size(2) * stride, latent.size(3) * stride},
                                     torch::TensorOptions().dtype(torch::kFloat32).device(placement_.device));
  // One latent frame at a time (821-836); each chunk unpatchified (837), made float32 and clamped
  // (Wan2_2_VAE.decode, 1044-1046) and written in place: no list of chunks and no final concatenation.
  VaeCache cache;
  std::int64_t written = 0;
  for (std::int64_t i = 0; i < frames; ++i) {
    cache.next = 0;
    torch::Tensor chunk = unpatchify(run_stack(decoder_, x.narrow(2, i, 1), cache, i == 0)).squeeze(0);
    if (written + chunk.size(1) > video_frames)
      throw Error(ErrorCode::kInternal, "Wan2.2 VAE decode produced more frames than 1 + 4(F-1)");
    video.narrow(1, written, chunk.size(1)).copy_(chunk.to(torch::kFloat32).clamp_(-1.0, 1.0));
    written += chunk.size(1);
    chunk = torch::Tensor();
    if (on_frame) on_frame(static_cast<int>(i + 1), static_cast<int>(frames));
  }
  if (written != video_frames)
    throw Error(ErrorCode::kInternal, "Wan2.2 VAE decode produced " + std::to_string(written) + " frames, expected " +
                                          std::to_string(video_frames));
  return video;
}

Wan22Vae load_vae22(const TensorSourcePtr& file, const ModelPlacement& placement) {
  const LongLivedBlocks weights;  // the parameters stay for the phase: sized tightly
  const Vae22Config config = detect_vae22_config(*file);
  Wan22Vae model(config, placement);
  load_strict(*model, *file, "Wan2.2 VAE");
  model->eval();
  return model;
}

}  // namespace wan
