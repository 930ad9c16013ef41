// The stages of text-to-video on one process, as WanT2V.generate runs them: encode the prompts,
// draw the noise, denoise with classifier-free guidance, decode. generate() strings them together;
// eval-case and the benchmark call them one by one.
#pragma once
#include <torch/types.h>

#include <functional>
#include <vector>

#include "model/dit.h"
#include "model/model_files.h"
#include "pipeline/plan.h"
#include "video/video_writer.h"

namespace wan {

struct TextContexts {
  torch::Tensor context;       // [L_prompt, text_dim] float32 (valid tokens only) on the DiT's device
  torch::Tensor context_null;  // [L_negative, text_dim]
  std::vector<std::int64_t> ids_prompt, ids_negative;                   // padded to text_len
  std::int64_t prompt_tokens_dropped = 0, negative_tokens_dropped = 0;  // cut at text_len (umT5's 512)
  std::int64_t text_len = 0;
};

// Loads the tokenizer and umT5 on plan.t5_device, encodes prompt and negative prompt, frees T5.
// With `sharding`, umT5's weights are sharded across ranks (t5_fsdp).
TextContexts encode_prompts(const RunPlan& plan, const ShardingLoader& sharding = {});

// Image-to-video's conditioning. Wan2.1 I2V and Wan2.2 I2V-A14B (WanI2V.generate): the start
// picture's CLIP features (Wan2.1 only) and y = [mask (4 channels, 1 on the first latent frame) | VAE
// latent of the picture followed by black frames]; both CFG branches use the same. Wan2.2 TI2V-5B
// (textimage2video.py i2v): the picture's one-frame latent, which replaces latent frame 0 before the
// first step and after every step, whose tokens then take timestep 0. Undefined tensors for
// text-to-video.
struct ImageContext {
  torch::Tensor clip_fea;     // [1, tokens, clip_dim] float32 on the DiT's device; Wan2.1 only
  torch::Tensor y;            // [4 + z_dim, F_lat, h, w] float32 on the DiT's device
  torch::Tensor first_frame;  // TI2V: [z_dim, 1, h, w] float32 on the DiT's device
  bool defined() const { return y.defined() || first_frame.defined(); }
};

// The timestep of each token at step timestep t: t for all, or for TI2V image-to-video 0 for the
// tokens of latent frame 0 (textimage2video.py:573-578). `latent`: [z, F, h, w].
TokenTimesteps step_timesteps(const RunPlan& plan, const ImageContext& image, const torch::Tensor& latent, double t);

// Loads CLIP, encodes the picture, frees CLIP (models that take CLIP features); loads the VAE, encodes
// [picture, frames - 1 zero frames], frees it.
// Returns an empty context for text-to-video plans.
ImageContext encode_image(const RunPlan& plan);

// torch.randn(latent_shape, generator=torch.Generator(device).manual_seed(seed)), float32.
torch::Tensor initial_noise(const RunPlan& plan);

// The DiT (Wan2.2 A14B: the low-noise expert; high_noise: the high-noise one).
// on_host: loaded into host memory (pinned where CUDA is present) with the device's placement otherwise,
// for WanModelImpl::move_to at the boundary (idle_expert_on_host).
WanModel load_plan_dit(const RunPlan& plan, const ShardingLoader& sharding = {}, bool high_noise = false,
                       bool on_host = false);

// Called after each step with the new latent (step counts from 1).
using StepObserver = std::function<void(int step, int total, const torch::Tensor& latent)>;

// The guided velocity uncond + g * (cond - uncond) at (latent, t); the distributed runtime supplies
// its own (ParallelDit), the default runs both forwards here.
using VelocityFn = std::function<torch::Tensor(const torch::Tensor& latent, const TokenTimesteps& t)>;

// Wan2.2 A14B's high-noise expert, beside the low-noise one denoise() is given.
struct HighNoiseExpert {
  WanModel* model = nullptr;
  VelocityFn velocity;  // its guided velocity (the distributed runtime's), or empty
  // Called once, before the first low-noise step (idle_expert_on_host: free the high-noise expert, which
  // the falling timesteps never need again, and bring the low-noise one to the device).
  std::function<void()> before_low_noise;
};

// Whether the step at timestep t runs the high-noise expert: t >= boundary x num_train_timesteps (1000),
// text2video.py's test; always false for a single DiT.
bool runs_high_noise_expert(const RunPlan& plan, double t);

// The sampling loop: per timestep a conditional and an unconditional forward, CFG
// uncond + g * (cond - uncond), one solver step. Returns the final latent [z, F, h, w] float32.
// `image` conditions both forwards (image-to-video); velocity_fn, when given, has it already.
// Wan2.2 A14B: the steps runs_high_noise_expert picks run `high` with request.guidance_high, the others
// `dit` with request.guidance; one sampler, whose multistep history crosses the switch.
torch::Tensor denoise(const RunPlan& plan, WanModel& dit, const TextContexts& text, torch::Tensor noise,
                      const StepObserver& observer = {}, const VelocityFn& velocity_fn = {},
                      const ImageContext& image = {}, const HighNoiseExpert& high = {});

// VAE decode (float32, plan.device) -> video [3, T, H, W] in [-1, 1] on the CPU.
torch::Tensor decode_video(const RunPlan& plan, const torch::Tensor& latent,
                           const std::function<void(int, int)>& on_frame = {});

// [3, T, H, W] in [-1, 1] -> RGB24 as the reference's cache_video: (x + 1) / 2 * 255, truncated.
Rgb8Video to_rgb8(const torch::Tensor& video);

}  // namespace wan
