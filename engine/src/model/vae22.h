// Wan2.2 VAE (official Wan-Video/Wan2.2 at 42bf4cf, wan/modules/vae2_2.py: WanVAE_ plus the
// Wan2_2_VAE wrapper's latent scaling), the 4x16x16 VAE of TI2V-5B with a 48-channel latent.
//
// What differs from the Wan2.1 VAE (model/vae.h):
//  * the video is patchified 2x2 into 12 channels before the encoder and the decoder's 12 output
//    channels are unpatchified (vae2_2.py:280-313, used at 785 and 837): channel c*4 + r*2 + q holds
//    x[c, :, q::2, r::2] (q = row offset, r = column offset);
//  * each encoder stage is a Down_ResidualBlock: its residual blocks and resample plus a parameter-free
//    AvgDown3D shortcut of the stage input (vae2_2.py:316-368, 415-452); each decoder stage an
//    Up_ResidualBlock with a DupUp3D shortcut (370-412, 455-497) when it upsamples;
//  * the decoder has its own width dec_dim (WanVAE_ dim / dec_dim, 734-776) and its upsampling convs
//    keep the channel count (Resample upsample2d/3d, 86-98);
//  * latent = (mu - mean) / std with 48 means and stds (Wan2_2_VAE.__init__, 904-1012).
// Sizes come from the tensors (encoder width, decoder width, z_dim, stage multipliers, temporal
// down-sampling), so the 160/256-wide release and the small test fixtures load alike.
#pragma once

#include <torch/nn/module.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "model/layers.h"
#include "model/vae.h"  // VaeCache: the per-conv temporal caches, shared with the Wan2.1 VAE
#include "weights/tensor_source.h"

namespace wan {

// The latent normalisation of Wan2_2_VAE.__init__ (vae2_2.py:904-1012): latent = (mu - mean) * (1/std).
extern const std::array<double, 48> kVae22LatentMean;
extern const std::array<double, 48> kVae22LatentStd;

struct Vae22Config {
  std::int64_t dim = 160;      // encoder width (WanVAE_ dim, Wan2_2_VAE c_dim; vae2_2.py:738, 893)
  std::int64_t dec_dim = 256;  // decoder width (WanVAE_ dec_dim; vae2_2.py:739)
  std::int64_t z_dim = 48;     // latent channels (Wan2_2_VAE z_dim; vae2_2.py:892)
  std::vector<std::int64_t> dim_mult{1, 2, 4, 4};
  std::int64_t num_res_blocks = 2;                           // per encoder stage; the decoder has one more
  std::vector<bool> temporal_downsample{false, true, true};  // per encoder stage but the last (vae2_2.py:896)
  // Pixels per latent pixel: the 2x2 patchify times 2 per encoder stage but the last (16 for the release).
  std::int64_t spatial_stride() const { return std::int64_t(2) << (dim_mult.size() - 1); }
  // Video frames per latent frame after the first: 2 per temporal downsample (4 for the release).
  std::int64_t temporal_stride() const;
};

// True if `source` holds a Wan2.2 VAE under the official names (the .pth of the release, ComfyUI's
// wan2.2_vae.safetensors): the encoder's first conv takes 12 = 3 x 2 x 2 patchified channels and the
// decoder has Up_ResidualBlock stages (decoder.upsamples.0.upsamples.*), where the Wan2.1 VAE's first
// conv takes 3 channels. Never throws.
bool is_wan22_vae(const TensorSource& source);

// Reads the sizes from the tensor shapes. Throws wan::Error(kModelMismatch) naming the file when it is
// not a Wan2.2 VAE (a Wan2.1 VAE included) or its stages are inconsistent.
Vae22Config detect_vae22_config(const TensorSource& source);

// A stage of the Wan2.2 encoder or decoder: a Down_/Up_ResidualBlock or a middle block.
// first_chunk: the decoder's first latent frame (DupUp3D keeps only its last frame then).
struct Vae22Layer : torch::nn::Module {
  virtual torch::Tensor run(const torch::Tensor& x, VaeCache& cache, bool first_chunk) = 0;
};

class Wan22VaeImpl : public torch::nn::Module {
 public:
  // Registers the parameters under the official state_dict names (encoder.*, conv1, conv2, decoder.*),
  // uninitialised (load_vae22 fills them). The convolutions compute in placement.compute_dtype; build
  // the placement with ModelPlacement::make(dtype, device, /*fp32_compute_on_cpu=*/true) as for the
  // Wan2.1 VAE (the reference runs float32). Throws wan::Error(kUnsupported) for a config whose
  // temporal stride is not 4 or that has fewer than 2 stages (the official chunking assumes them).
  Wan22VaeImpl(const Vae22Config& config, const ModelPlacement& placement);

  // video [3, T, H, W] in [-1, 1] (any device and float dtype), T = 1 + 4k, H and W multiples of 16 ->
  // normalised latent [z_dim, 1 + (T-1)/4, H/16, W/16] float32 on the placement's device: the mean mu,
  // no sampling (WanVAE_.encode, vae2_2.py:783-810, and Wan2_2_VAE.encode, 1024-1036). Runs frame 0,
  // then chunks of 4 frames, with the per-conv temporal caches, each chunk patchified and moved to the
  // device on its own. Throws wan::Error(kInvalidArgument) for another shape.
  torch::Tensor encode(const torch::Tensor& video);

  // latent [z_dim, F, h, w] (normalised) -> video [3, 1 + 4(F-1), 16h, 16w] float32 clamped to [-1, 1]
  // on the placement's device (WanVAE_.decode, vae2_2.py:812-839, Wan2_2_VAE.decode, 1038-1051). One
  // latent frame at a time with the caches (first_chunk for frame 0: 1 video frame, then 4 per latent
  // frame); each chunk is unpatchified, clamped and written into the preallocated video, so the working
  // set does not grow with F. on_frame(i, F) is called after latent frame i (1-based) is decoded.
  // Throws wan::Error(kInvalidArgument) for another shape.
  torch::Tensor decode(const torch::Tensor& latent, const std::function<void(int, int)>& on_frame = {});

  const Vae22Config& config() const { return config_; }

 private:
  struct Stack {
    std::shared_ptr<torch::nn::Module> conv1;         // CausalConv3d
    std::vector<std::shared_ptr<Vae22Layer>> layers;  // stages and middle blocks, in execution order
    std::shared_ptr<torch::nn::Module> head_norm, head_conv;
  };
  torch::Tensor run_stack(Stack& s, const torch::Tensor& x, VaeCache& cache, bool first_chunk);

  Vae22Config config_;
  ModelPlacement placement_;
  Stack encoder_, decoder_;
  Conv conv1{nullptr}, conv2{nullptr};
  torch::Tensor mean_, inv_std_;  // [z_dim] float32
};
TORCH_MODULE(Wan22Vae);

// Detects the config and loads the weights strictly (load_strict: a missing, unexpected or mis-shaped
// tensor is an error naming it and the file). Reads the official Wan2.2_VAE.pth and ComfyUI's
// wan2.2_vae.safetensors, which use the same names. Throws wan::Error(kModelMismatch) for a file that
// is not a Wan2.2 VAE.
Wan22Vae load_vae22(const TensorSourcePtr& file, const ModelPlacement& placement);

}  // namespace wan
