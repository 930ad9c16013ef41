#include "pipeline/text_to_video.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "core/memory.h"
#include "model/model_files.h"
#include "model/step_cache.h"
#include "model/tokenizer.h"
#include "sampling/sampler.h"
#include "wan/error.h"
#include "weights/file_util.h"

namespace wan {
namespace {
// The DiT's and umT5's placement: the plan's dtype on `device`, float8 weights kept as the request says.
ModelPlacement weights_placement(const RunPlan& plan, torch::Device device) {
  ModelPlacement p = ModelPlacement::make(plan.dtype, device);
  p.keep_float8 = plan.request.fp8_weights == Fp8Weights::kKeep;
  return p;
}
}  // namespace

TextContexts encode_prompts(const RunPlan& plan, const ShardingLoader& sharding) {
  torch::NoGradGuard no_grad;
  LoadedT5 t5 = load_t5(plan.t5_source, weights_placement(plan, plan.t5_device), sharding);
  plan.t5_source->release_resident_pages();  // the weights were copied out: do not count the file twice
  std::unique_ptr<Tokenizer> tokenizer =
      plan.files.tokenizer.empty() ? std::move(t5.embedded_tokenizer) : Tokenizer::from_file(plan.files.tokenizer);
  if (!tokenizer) throw Error(ErrorCode::kFileNotFound, plan.files.t5 + " has no embedded tokenizer: pass --tokenizer");
  const std::int64_t text_len = plan.dit.text_len;
  auto encode = [&](const std::string& text, std::vector<std::int64_t>* ids, std::int64_t* dropped) {
    const TokenizedText tok = tokenizer->encode(text, text_len);
    *ids = tok.ids;
    *dropped = tok.dropped_tokens;
    const torch::Tensor valid =
        torch::tensor(std::vector<std::int64_t>(tok.ids.begin(), tok.ids.begin() + tok.valid_tokens),
                      torch::TensorOptions().dtype(torch::kInt64))
            .to(plan.t5_device);
    return t5.model->forward(valid).to(plan.device);
  };
  TextContexts out;
  out.text_len = text_len;
  out.context = encode(plan.request.prompt, &out.ids_prompt, &out.prompt_tokens_dropped);
  out.context_null = encode(plan.request.negative_prompt, &out.ids_negative, &out.negative_tokens_dropped);
  return out;
}

ImageContext encode_image(const RunPlan& plan) {
  ImageContext out;
  if (!plan.i2v) return out;
  torch::NoGradGuard no_grad;
  namespace F = torch::nn::functional;
  if (plan.dit.kind == DitKind::kTI2V) {
    // textimage2video.py i2v: the cropped picture encoded as ONE frame [3, 1, h, w] -> [z, 1, h/16, w/16].
    LoadedVae vae = load_vae(plan.vae_source, ModelPlacement::make(torch::kFloat32, plan.device));
    plan.vae_source->release_resident_pages();
    out.first_frame = vae.encode(plan.image.unsqueeze(1).to(plan.device));
    return out;
  }
  if (plan.dit.has_clip_input()) {  // Wan2.1; Wan2.2's I2V-A14B has no CLIP (image2video.py)
    // The reference runs CLIP under fp16 autocast on the GPU; float32 on the CPU.
    const torch::ScalarType dtype =
        plan.device.is_cpu() || plan.dtype == torch::kFloat32 ? torch::kFloat32 : torch::kFloat16;
    LoadedClip clip = load_clip(plan.clip_source, ModelPlacement::make(dtype, plan.device), plan.clip.num_heads);
    plan.clip_source->release_resident_pages();
    out.clip_fea = clip.model->encode(plan.image);
    release_free_heap();  // CLIP is gone
  }
  const auto& s = plan.latent_shape;  // [z, F_lat, h, w]
  const std::int64_t h = plan.request.height, w = plan.request.width, frames = plan.request.frames;
  // [bicubic-resized picture, frames - 1 black frames] -> VAE latent [z, F_lat, h/8, w/8]
  const torch::Tensor first =
      F::interpolate(
          plan.image.unsqueeze(0),
          F::InterpolateFuncOptions().size(std::vector<std::int64_t>{h, w}).mode(torch::kBicubic).align_corners(false))
          .transpose(0, 1);  // [3, 1, h, w]
  torch::Tensor video = torch::cat({first, torch::zeros({3, frames - 1, h, w}, first.options())}, 1);
  torch::Tensor latent;
  {
    LoadedVae vae = load_vae(plan.vae_source, ModelPlacement::make(torch::kFloat32, plan.device));
    plan.vae_source->release_resident_pages();
    latent = vae.encode(video.to(plan.device));
  }
  video = torch::Tensor();
  release_free_heap();  // the VAE and the encode's working set are gone
  torch::Tensor mask = torch::zeros({4, s[1], s[2], s[3]}, latent.options());
  mask.narrow(1, 0, 1).fill_(1.0);
  out.y = torch::cat({mask, latent}, 0);
  return out;
}

torch::Tensor initial_noise(const RunPlan& plan) {
  const auto& s = plan.latent_shape;
  const std::vector<std::int64_t> shape{s[0], s[1], s[2], s[3]};
  const auto seed = static_cast<std::uint64_t>(plan.request.seed);
  const auto options = torch::TensorOptions().dtype(torch::kFloat32).device(plan.device);
  if (plan.device.is_cpu() || plan.request.cpu_noise)  // the CPU generator, then moved to the device
    return torch::randn(shape, at::detail::createCPUGenerator(seed), options.device(torch::kCPU)).to(plan.device);
  // A fresh generator of the device's kind seeded like torch.Generator(device).manual_seed(seed).
  at::Generator gen = at::globalContext().defaultGenerator(plan.device).clone();
  gen.set_current_seed(seed);
  return torch::randn(shape, gen, options);
}

WanModel load_plan_dit(const RunPlan& plan, const ShardingLoader& sharding, bool high_noise, bool on_host) {
  if (high_noise && !plan.moe) throw Error(ErrorCode::kInternal, "load_plan_dit: this model has one DiT");
  const std::string& config_path = high_noise ? plan.files.dit_high_config : plan.files.dit_config;
  const TensorSourcePtr& source = high_noise ? plan.dit_high_source : plan.dit_source;
  const std::string config = config_path.empty() ? std::string() : read_text_file(config_path);
  ModelPlacement placement = weights_placement(plan, plan.device);
  if (on_host) placement.device = torch::kCPU;  // the device's dtypes, host memory
  WanModel dit = load_dit(source, config, placement, sharding).model;
  source->release_resident_pages();
  if (on_host && torch::cuda::is_available()) {
    // Page-locked, so that the copy at the boundary runs at the bus's speed.
    torch::NoGradGuard no_grad;
    for (torch::Tensor& p : dit->parameters()) p.set_data(p.data().pin_memory());
  }
  return dit;
}

bool runs_high_noise_expert(const RunPlan& plan, double t) {
  constexpr double kNumTrainTimesteps = 1000;  // wan/configs/shared_config.py num_train_timesteps
  return plan.moe && t >= plan.request.boundary.value() * kNumTrainTimesteps;
}

TokenTimesteps step_timesteps(const RunPlan& plan, const ImageContext& image, const torch::Tensor& latent, double t) {
  if (!image.first_frame.defined()) return TokenTimesteps(t);
  // mask2[0][0][:, ::2, ::2]: one value per token; latent frame 0 is patch frame 0 (patch_size[0] is 1).
  const std::int64_t frame_tokens =
      (latent.size(2) / plan.dit.patch_size[1]) * (latent.size(3) / plan.dit.patch_size[2]);
  return TokenTimesteps::first_frame(t, frame_tokens, 0.0);
}

torch::Tensor denoise(const RunPlan& plan, WanModel& dit, const TextContexts& text, torch::Tensor noise,
                      const StepObserver& observer, const VelocityFn& velocity_fn, const ImageContext& image,
                      const HighNoiseExpert& high) {
  torch::NoGradGuard no_grad;
  if (plan.moe && !high.model) throw Error(ErrorCode::kInternal, "denoise: the high-noise expert is not loaded");
  auto sampler = make_sampler(plan.sampler, plan.request.steps.value(), plan.request.shift.value(),
                              plan.request.denoising_step_list);
  torch::Tensor latent = std::move(noise);
  // TI2V image-to-video: latent = (1 - mask) * z + mask * latent with mask 0 on frame 0 only
  // (textimage2video.py:550-551, 598): frame 0 is the picture's latent, before and after every step.
  const auto keep_first_frame = [&] {
    if (image.first_frame.defined()) latent.narrow(1, 0, 1).copy_(image.first_frame);
  };
  if (image.first_frame.defined()) latent = latent.clone();  // the caller's noise stays as it was
  keep_first_frame();
  const int total = sampler->schedule().steps();
  // Step caching: one cache for the run, shared by both experts (it drops its residuals at the switch);
  // left on the module afterwards so the caller can read what it skipped.
  const std::shared_ptr<StepCache> cache = plan.cache ? std::make_shared<StepCache>(*plan.cache) : nullptr;
  if (cache) cache->agree = dit->all_ranks_agree;
  dit->step_cache = cache;
  if (plan.moe) (*high.model)->step_cache = cache;
  bool switched = false;
  for (int i = 0; i < total; ++i) {
    const double t = static_cast<double>(sampler->current_timestep());
    const TokenTimesteps timesteps = step_timesteps(plan, image, latent, t);
    const bool use_high = runs_high_noise_expert(plan, t);
    if (cache) {
      const double g = use_high ? plan.request.guidance_high.value() : plan.request.guidance.value();
      cache->begin_step(i, g == 1.0 ? 1 : 2, use_high ? high.model->get() : dit.get());
    }
    // The first low-noise step (whether or not high-noise steps came before: --boundary 1 has none).
    if (!use_high && !switched) {
      switched = true;
      if (high.before_low_noise) high.before_low_noise();
    }
    WanModel& model = use_high ? *high.model : dit;
    const VelocityFn& fn = use_high ? high.velocity : velocity_fn;
    const double g = use_high ? plan.request.guidance_high.value() : plan.request.guidance.value();
    torch::Tensor velocity;
    if (fn) {
      velocity = fn(latent, timesteps);
    } else {
      const torch::Tensor cond = model->forward(latent, timesteps, text.context, image.clip_fea, image.y);
      if (g == 1.0) {  // uncond + 1 (cond - uncond): the conditional prediction, without the second forward
        velocity = cond;
      } else {
        const torch::Tensor uncond = model->forward(latent, timesteps, text.context_null, image.clip_fea, image.y);
        velocity = uncond + g * (cond - uncond);
      }
    }
    latent = sampler->step(velocity, latent);
    keep_first_frame();
    velocity = torch::Tensor();
    release_free_heap(/*keep_blocks=*/true);  // the step's small temporaries; large blocks serve the next step
    if (observer) observer(i + 1, total, latent);
  }
  return latent;
}

torch::Tensor decode_video(const RunPlan& plan, const torch::Tensor& latent,
                           const std::function<void(int, int)>& on_frame) {
  torch::NoGradGuard no_grad;
  LoadedVae vae = load_vae(plan.vae_source, ModelPlacement::make(torch::kFloat32, plan.device));
  plan.vae_source->release_resident_pages();
  return vae.decode(latent.to(plan.device, torch::kFloat32), on_frame).cpu();
}

Rgb8Video to_rgb8(const torch::Tensor& video) {
  TORCH_CHECK(video.dim() == 4 && video.size(0) == 3, "to_rgb8 expects [3, T, H, W]");
  // [3, T, H, W] -> [T, H, W, 3]
  const torch::Tensor u8 = ((video.to(torch::kFloat32).clamp(-1, 1) + 1) / 2 * 255)
                               .to(torch::kUInt8)
                               .permute({1, 2, 3, 0})
                               .contiguous()
                               .cpu();
  Rgb8Video out;
  out.frames = static_cast<int>(u8.size(0));
  out.height = static_cast<int>(u8.size(1));
  out.width = static_cast<int>(u8.size(2));
  out.data.assign(u8.data_ptr<std::uint8_t>(), u8.data_ptr<std::uint8_t>() + u8.numel());
  return out;
}

}  // namespace wan
