#include "pipeline/plan.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

#include "core/runtime.h"
#include "model/model_files.h"
#include "pipeline/rank_hooks.h"
#include "pipeline/request_checks.h"
#include "sampling/schedule.h"
#include "video/image_reader.h"
#include "video/pil_resize.h"
#include "video/video_writer.h"
#include "wan/error.h"
#include "weights/file_util.h"
#include "weights/loader.h"
#include "weights/lora.h"
#include "weights/name_tables.h"

namespace wan {
namespace fs = std::filesystem;

const char* const kDefaultNegativePrompt =
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，"
    "丑陋的，"
    "残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱"
    "的背景，"
    "三条腿，背景人很多，倒着走";
const char* const kImageToVideoNegativePrefix = "镜头晃动，";

std::array<std::int64_t, 2> image_to_video_size(std::int64_t max_width, std::int64_t max_height,
                                                std::int64_t image_width, std::int64_t image_height,
                                                std::int64_t stride, std::int64_t patch_h, std::int64_t patch_w) {
  // lat_h = round(np.sqrt(max_area * aspect) // vae_stride // patch * patch): float floor divisions.
  const double area = static_cast<double>(max_width) * static_cast<double>(max_height);
  const double aspect = static_cast<double>(image_height) / static_cast<double>(image_width);
  const double lat_h = std::floor(std::floor(std::sqrt(area * aspect) / stride) / patch_h) * patch_h;
  const double lat_w = std::floor(std::floor(std::sqrt(area / aspect) / stride) / patch_w) * patch_w;
  return {static_cast<std::int64_t>(std::llround(lat_w)) * stride,
          static_cast<std::int64_t>(std::llround(lat_h)) * stride};
}

namespace {

Error invalid(const std::string& message) { return Error(ErrorCode::kInvalidArgument, message); }

std::int64_t random_seed() {
  std::random_device rd;
  const std::uint64_t v = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  return static_cast<std::int64_t>(v & 0x7fffffffffffffffull);  // [0, sys.maxsize], as the reference
}

// TF.to_tensor(picture).sub_(0.5).div_(0.5): [3, h, w] float32 in [-1, 1] on the CPU.
torch::Tensor picture_tensor(const Rgb8Video& picture) {
  return torch::from_blob(const_cast<std::uint8_t*>(picture.data.data()), {picture.height, picture.width, 3},
                          torch::kUInt8)
      .permute({2, 0, 1})
      .to(torch::kFloat32)
      .div_(255.0)
      .sub_(0.5)
      .div_(0.5)
      .contiguous();
}

// Image-to-video: the model kind fits the request, the picture reads, the CLIP tower matches the DiT.
void check_image_input(RunPlan& p) {
  const std::string kind = dit_kind_name(p.dit.kind);
  if (p.dit.kind == DitKind::kFLF2V)
    throw Error(ErrorCode::kUnsupported,
                p.files.dit +
                    ": this is a first-last-frame (flf2v) model; this version runs text-to-video "
                    "and image-to-video models only");
  if (p.dit.kind == DitKind::kTI2V) {
    // TI2V-5B does both: a picture makes it image-to-video (textimage2video.py i2v), no CLIP, no y.
    if (p.request.image.empty()) return;
    p.i2v = true;
    p.picture = read_image(p.request.image);
    return;
  }
  if (p.dit.has_image_input() && p.request.image.empty())
    throw invalid(p.files.dit + " is an image-to-video (" + kind +
                  ") model: give the start picture with --image FILE "
                  "(or use a text-to-video model)");
  if (!p.dit.has_image_input() && !p.request.image.empty())
    throw invalid("--image " + p.request.image + ": " + p.files.dit +
                  " is a text-to-video model; image-to-video needs an I2V model");
  if (!p.dit.has_image_input()) return;
  p.i2v = true;
  if (p.dit.has_clip_input()) {
    p.files.clip = resolve_clip_file(p.request.model, p.files);
    p.clip_source = open_weights(p.files.clip);
    p.clip = detect_clip_config(*p.clip_source);
    if (p.clip.dim != p.dit.clip_dim)
      throw Error(ErrorCode::kModelMismatch, p.files.clip + ": CLIP features are " + std::to_string(p.clip.dim) +
                                                 " wide but the DiT's image embedding takes " +
                                                 std::to_string(p.dit.clip_dim));
  } else if (!p.request.model.clip.empty()) {
    p.notes.push_back("--clip " + p.request.model.clip +
                      " is not used: this image-to-video model (Wan2.2) takes no CLIP features");
  }
  p.image = picture_tensor(read_image(p.request.image));
}

// Cheap header checks that catch a wrong or broken file before any weights are read.
void check_models(RunPlan& p) {
  p.dit_source = open_weights(p.files.dit);
  const RenamedSource dit_named(p.dit_source, dit_official_name);
  // A config.json that describes another (larger) model than the weights is refused before the DiT is
  // built, or a hostile num_layers would allocate layer after layer (../shared/bad-inputs/).
  p.dit = dit_config_for(dit_named, p.files.dit_config);
  if (!p.files.dit_high.empty()) {
    // Wan2.2 A14B: the high-noise expert must be the low-noise one's twin (text2video.py builds both from
    // one config).
    p.moe = true;
    p.dit_high_source = open_weights(p.files.dit_high);
    const RenamedSource high_named(p.dit_high_source, dit_official_name);
    const DitConfig high = dit_config_for(high_named, p.files.dit_high_config);
    const auto sizes = [](const DitConfig& c) {
      return std::string(dit_kind_name(c.kind)) + " dim " + std::to_string(c.dim) + ", " +
             std::to_string(c.num_layers) + " layers, " + std::to_string(c.num_heads) + " heads, in " +
             std::to_string(c.in_dim) + ", ffn " + std::to_string(c.ffn_dim) + ", text " + std::to_string(c.text_dim) +
             (c.has_clip_input() ? ", CLIP " + std::to_string(c.clip_dim) : "");
    };
    if (p.dit.kind == DitKind::kTI2V || high.kind == DitKind::kTI2V)
      throw Error(ErrorCode::kModelMismatch, p.files.dit_high + ", " + p.files.dit +
                                                 ": a TI2V-5B DiT is one model, not an A14B expert (Wan2.2 A14B's "
                                                 "experts are T2V or I2V DiTs); give TI2V-5B with --dit alone");
    if (sizes(high) != sizes(p.dit) || high.text_len != p.dit.text_len || high.freq_dim != p.dit.freq_dim)
      throw Error(ErrorCode::kModelMismatch, "the two experts do not match: " + p.files.dit_high + " (high noise) is " +
                                                 sizes(high) + ", " + p.files.dit + " (low noise) is " + sizes(p.dit) +
                                                 "; give the two halves of one Wan2.2 A14B model");
  }
  if (p.decode_only && !p.request.model.loras.empty())
    p.notes.push_back(
        "--lora is not used by --decode-latent: the latent was sampled already (its LoRAs are in its "
        "settings)");
  if (!p.decode_only && !p.request.model.loras.empty()) {
    // Merged as the DiT's weights are read; every LoRA is checked against the DiT's names and shapes here.
    // Wan2.2 A14B: each expert takes the LoRAs for it and those for both, in the order given.
    std::vector<LoraFile> low, high;
    for (LoraFile l : p.request.model.loras) {
      if (!p.moe && l.expert != LoraExpert::kBoth)
        throw Error(ErrorCode::kInvalidArgument,
                    "LoRA " + l.path + " is set for the " + lora_expert_name(l.expert) +
                        " expert, but this model has one DiT (experts are Wan2.2 A14B's); use --lora for it");
      l.path = resolve_lora_file(l.path, p.request.model.model_dir);
      p.lora_files.push_back(l);
      if (l.expert != LoraExpert::kHighNoise) low.push_back(l);
      if (l.expert != LoraExpert::kLowNoise) high.push_back(l);
    }
    const auto merge = [&](TensorSourcePtr& source, const std::vector<LoraFile>& loras, const char* expert) {
      if (loras.empty()) return;
      std::shared_ptr<LoraMergedSource> merged;
      try {
        merged = std::make_shared<LoraMergedSource>(std::make_shared<RenamedSource>(source, dit_official_name), loras,
                                                    p.request.model.lora_allow_partial);
      } catch (const Error& e) {
        if (!p.moe) throw;
        throw Error(e.code(), std::string(e.what()) + expert);  // which of the A14B experts it was merged into
      }
      for (const LoraReport& r : merged->reports())
        if (r.unmatched > 0)
          p.notes.push_back("LoRA " + r.path + expert + ": " + std::to_string(r.matched) + " entries applied, " +
                            std::to_string(r.unmatched) +
                            " match no DiT weight and are left out (--lora-allow-partial)");
      source = merged;
    };
    merge(p.dit_source, low, p.moe ? " (low-noise expert)" : "");
    if (p.moe) merge(p.dit_high_source, high, " (high-noise expert)");
  }
  if (!p.decode_only) check_image_input(p);
  p.vae_source = open_weights(p.files.vae);
  p.vae = vae_config_of(*p.vae_source);
  // t2v: in = out = z; i2v: in = z noise + 4 mask + z image latent.
  const std::int64_t expected_in = p.dit.has_image_input() ? 2 * p.vae.z_dim + 4 : p.vae.z_dim;
  if (p.vae.wan22 && p.dit.out_dim != p.vae.z_dim)
    throw Error(ErrorCode::kModelMismatch,
                p.files.vae + " is the Wan2.2 VAE (48 latent channels, TI2V-5B's) but the DiT takes " +
                    std::to_string(p.dit.out_dim) +
                    " channels: Wan2.1 models and Wan2.2 A14B use the Wan2.1 VAE "
                    "(Wan2.1_VAE.pth, ComfyUI's wan_2.1_vae.safetensors); pass it with --vae");
  if (!p.vae.wan22 && p.dit.kind == DitKind::kTI2V)
    throw Error(ErrorCode::kModelMismatch,
                p.files.vae + " is the Wan2.1 VAE (" + std::to_string(p.vae.z_dim) +
                    " latent channels) but Wan2.2 TI2V-5B needs the Wan2.2 VAE (Wan2.2_VAE.pth, ComfyUI's "
                    "wan2.2_vae.safetensors); pass it with --vae");
  if (p.vae.z_dim != p.dit.out_dim || p.dit.in_dim != expected_in)
    throw Error(ErrorCode::kModelMismatch, p.files.vae + ": VAE latent has " + std::to_string(p.vae.z_dim) +
                                               " channels, which does not fit the DiT (in " +
                                               std::to_string(p.dit.in_dim) + ", out " + std::to_string(p.dit.out_dim) +
                                               " channels)");
  if (p.decode_only) return;
  if (fs::path(p.files.t5).extension() == ".gguf")
    throw Error(ErrorCode::kUnsupported, p.files.t5 +
                                             ": GGUF text encoders are not read; use umt5_xxl_fp16.safetensors or "
                                             "umt5_xxl_fp8_e4m3fn_scaled.safetensors (ComfyUI) or the official "
                                             "models_t5_umt5-xxl-enc-bf16.pth");
  p.t5_source = open_weights(p.files.t5);
  p.t5 = detect_t5_config(RenamedSource(p.t5_source, t5_official_name));
  if (p.t5.dim != p.dit.text_dim)
    throw Error(ErrorCode::kModelMismatch, p.files.t5 + ": text encoder width " + std::to_string(p.t5.dim) +
                                               " does not match the DiT's text_dim " + std::to_string(p.dit.text_dim));
  if (p.request.fp8_weights == Fp8Weights::kKeep) {
    const auto has_float8 = [](const TensorSource& source) {
      for (const std::string& name : source.names()) {
        const StoredDType d = source.info(name).dtype;
        if (d == StoredDType::kF8E4M3 || d == StoredDType::kF8E5M2) return true;
      }
      return false;
    };
    if (!has_float8(*p.dit_source) && !has_float8(*p.t5_source))
      p.notes.push_back(
          "--fp8-weights keep: neither the DiT nor the text encoder file stores float8 weights; "
          "they load as usual");
  }
  if (p.files.tokenizer.empty() && !p.t5_source->contains("spiece_model"))
    throw Error(ErrorCode::kFileNotFound, p.files.t5 +
                                              " has no embedded tokenizer: pass --tokenizer PATH/spiece.model "
                                              "(from the google/umt5-xxl folder of the official release)");
}

// The cache's numbers for this plan's model and task (model/step_cache.h make_step_cache_profile).
StepCacheProfile step_cache_profile(const RunPlan& p) {
  StepCacheModel m;
  m.dim = p.dit.dim;
  m.i2v = p.i2v;
  m.ti2v = p.dit.kind == DitKind::kTI2V;
  m.moe = p.moe;
  m.area = static_cast<std::int64_t>(p.request.width) * p.request.height;
  m.steps = p.request.steps.value();
  if (p.moe)
    for (double t : make_schedule(p.sampler, m.steps, p.request.shift.value(), p.request.denoising_step_list).timesteps)
      m.high_noise_steps += t >= p.request.boundary.value() * 1000 ? 1 : 0;  // text_to_video.h runs_high_noise_expert
  return make_step_cache_profile(p.request.cache, m);
}

}  // namespace

void validate_settings(const GenerationRequest& r, bool require_output) {
  if (r.decode_latent.empty()) {
    if (r.prompt.empty()) throw invalid("the prompt is empty: give --prompt TEXT");
    for (const auto& [flag, text] :
         {std::pair<const char*, const std::string&>{"--prompt", r.prompt}, {"--negative", r.negative_prompt}})
      if (const std::size_t at = invalid_utf8_at(text); at != std::string::npos)
        throw invalid(std::string(flag) + ": not valid UTF-8 text (byte " + std::to_string(at) +
                      "); save the prompt as UTF-8");
    if (r.frames < 1 || r.frames > kMaxFrames || (r.frames - 1) % 4 != 0)
      throw invalid("--frames must be 4n+1 between 1 and " + std::to_string(kMaxFrames) + " (1, 5, 9, ..., 81), got " +
                    std::to_string(r.frames));
    // Image-to-video: WIDTH*HEIGHT is only the largest area (image2video.py's max_area); the output size
    // it gives is a multiple of 16 by construction (image_to_video_size), so any sides up to the limit.
    const bool area_only = !r.image.empty();
    for (const auto& [flag, value] : {std::pair<const char*, int>{"--width", r.width}, {"--height", r.height}}) {
      if (area_only && (value < 1 || value > kMaxSide))
        throw invalid(std::string(flag) + " must be between 1 and " + std::to_string(kMaxSide) +
                      " (with --image, WIDTH*HEIGHT is the largest area of the video), got " + std::to_string(value));
      if (!area_only && (value < kMinSide || value > kMaxSide || value % kSideMultiple != 0))
        throw invalid(std::string(flag) + " must be a multiple of 16 between 16 and " + std::to_string(kMaxSide) +
                      " (patch 2 x VAE stride 8), got " + std::to_string(value));
    }
    if (r.steps && (*r.steps < 1 || *r.steps > kMaxSteps))
      throw invalid("--steps must be between 1 and " + std::to_string(kMaxSteps) + ", got " + std::to_string(*r.steps));
    if (!r.denoising_step_list.empty()) {
      if (r.sampler != SamplerKind::kDistill)
        throw invalid(
            "--denoising-step-list is the distill sampler's timestep list: use it with --sampler distill (the " +
            std::string(sampler_name(r.sampler)) + " sampler spaces its own " +
            (r.steps ? std::to_string(*r.steps) + " " : "") + "steps)");
      if (r.steps && *r.steps != static_cast<int>(r.denoising_step_list.size()))
        throw invalid("--steps " + std::to_string(*r.steps) + " but --denoising-step-list has " +
                      std::to_string(r.denoising_step_list.size()) +
                      " timesteps: the list is the steps (give one of the two)");
    }
    if (r.sampler == SamplerKind::kDistill) {
      // The list's entries (1..1000, going down); the shift is checked below.
      (void)make_schedule(r.sampler, r.steps.value_or(kDistillDefaultSteps), 1.0, r.denoising_step_list);
    }
    if (r.guidance && !std::isfinite(*r.guidance)) throw invalid("--guidance must be a finite number");
    if (r.guidance_high && !std::isfinite(*r.guidance_high))
      throw invalid("--guidance LOW,HIGH: the high-noise expert's scale must be a finite number");
    if (r.boundary && !(*r.boundary > 0 && *r.boundary <= 1))
      throw invalid(
          "--boundary must be above 0 and at most 1 (the share of the 1000 training timesteps at and above "
          "which the high-noise expert runs), got " +
          std::to_string(*r.boundary));
    if (r.shift && (!std::isfinite(*r.shift) || *r.shift <= 0)) throw invalid("--shift must be a finite number > 0");
    if (r.seed < -1) throw invalid("--seed must be >= 0, or -1 for a random seed");
  }
  validate_outputs(r, require_output);
}

RunPlan make_plan(const GenerationRequest& given, const DistConfig& config, bool require_output) {
  validate_settings(given, require_output);
  const GenerationRequest request = resolve_defaults(given);
  RunPlan p;
  p.request = request;
  p.decode_only = !request.decode_latent.empty();
  if (p.decode_only && !fs::exists(request.decode_latent))
    throw Error(ErrorCode::kFileNotFound, "--decode-latent " + request.decode_latent + ": no such file");
  if (p.decode_only && !fs::is_regular_file(request.decode_latent))
    throw Error(ErrorCode::kInvalidArgument,
                "--decode-latent " + request.decode_latent + " is not a regular file (a folder, pipe or device)");
  if (!p.decode_only) {
    p.sampler = request.sampler;
    // The list the distill sampler runs, written out (the sidecar and a re-run name it).
    if (p.sampler == SamplerKind::kDistill && p.request.denoising_step_list.empty())
      p.request.denoising_step_list = default_denoising_step_list(p.request.steps.value());
    if (p.request.seed < 0) p.request.seed = random_seed();
  }
  p.device = to_torch_device(request.device);
  // "auto": bf16 on a GPU (the reference's param_dtype); float32 on the CPU, where LibTorch's bf16
  // matmuls are slower than float32 ones.
  if (p.request.dtype == Dtype::kAuto) p.request.dtype = p.device.is_cpu() ? Dtype::kFloat32 : Dtype::kBFloat16;
  p.dtype = to_scalar_type(p.request.dtype);
  p.t5_device = config.t5_cpu ? torch::Device(torch::kCPU) : p.device;
  p.files = resolve_model_files(request.model);
  if (!p.files.paired_experts.empty()) p.notes.push_back(p.files.paired_experts);
  check_models(p);
  // Wan2.1's image-to-video config prefixes its default negative prompt (wan/configs/wan_i2v_14B.py);
  // Wan2.2's configs all take shared_config.py's as it is.
  if (!p.decode_only && p.request.negative_prompt.empty())
    p.request.negative_prompt =
        std::string(p.i2v && p.dit.has_clip_input() ? kImageToVideoNegativePrefix : "") + kDefaultNegativePrompt;
  if (p.moe && config.idle_expert_on_host && p.request.fp8_weights == Fp8Weights::kKeep)
    throw invalid(
        "idle_expert_on_host and --fp8-weights keep do not go together (the kept float8 layers are not "
        "moved); use --fp8-weights dequantize, or keep both experts on the device");
  if (!p.moe && !p.decode_only && (given.guidance_high || given.boundary))
    throw invalid(std::string(given.guidance_high ? "--guidance LOW,HIGH" : "--boundary") +
                  " is for Wan2.2 A14B (two experts); this model has one DiT: give one --guidance value");
  if (!p.moe && config.idle_expert_on_host)
    p.notes.push_back("idle_expert_on_host has no effect: this model has one DiT (it is for Wan2.2 A14B)");
  if (p.moe && !p.decode_only) {
    // Wan2.2 A14B's own defaults (wan/configs/wan_{t2v,i2v}_A14B.py) where the user gave none.
    // The distill sampler keeps its own (resolve_defaults: 4 steps, shift 5, guidance 1 for both experts);
    // which expert runs is still the boundary's (with 1000,750,500,250 and shift 5 the timesteps are
    // 1000, 937.5, 833.3, 625: the first two are high-noise for both 0.875 and 0.9, as LightX2V's
    // boundary_step_index 2).
    const bool distill = request.sampler == SamplerKind::kDistill;
    const ExpertDefaults d = expert_defaults(request_task(request));
    if (!given.steps && !distill) p.request.steps = d.steps;
    if (!given.shift && !distill) p.request.shift = d.shift;
    if (!given.guidance && !distill) p.request.guidance = d.guidance_low;
    // --guidance G: both experts; nothing given: the official pair.
    if (!p.request.guidance_high)
      p.request.guidance_high =
          given.guidance ? *p.request.guidance : (distill ? kDistillDefaultGuidance : d.guidance_high);
    if (!p.request.boundary) p.request.boundary = d.boundary;
  }
  if (!p.decode_only && config.cfg_parallel && config.world_size > 1) {
    // Guidance 1 runs no unconditional pass (ParallelDit::guided_velocity): CFG parallel's second half
    // would compute one only to throw it away.
    const bool low_one = p.request.guidance.value() == 1.0;
    const bool high_one = p.moe && p.request.guidance_high.value() == 1.0;
    if (low_one && (!p.moe || high_one))
      throw invalid(
          "cfg_parallel with guidance 1: without classifier-free guidance there is no unconditional "
          "pass for the second half of the ranks to run; give those ranks to sequence parallel "
          "(--ulysses / --ring) instead");
    if (low_one || high_one)
      p.notes.push_back(std::string("guidance 1 for the ") + (low_one ? "low" : "high") +
                        "-noise expert: CFG parallel's second half runs a forward it does not need in its steps");
  }
  if (p.dit.kind == DitKind::kTI2V && !p.decode_only && request.sampler != SamplerKind::kDistill) {
    // Wan2.2 TI2V-5B's config (wan/configs/wan_ti2v_5B.py) in both modes: 50 steps, shift 5, guide 5,
    // not the Wan2.1 image-to-video defaults.
    const TaskDefaults d = task_defaults(Task::kTextToVideo, request.width, request.height);
    if (!given.steps) p.request.steps = d.steps;
    if (!given.shift) p.request.shift = d.shift;
    if (!given.guidance) p.request.guidance = d.guidance;
  }
  // The official configs' sample_fps: 16, and 24 for TI2V-5B.
  if (!p.request.fps) p.request.fps = p.dit.kind == DitKind::kTI2V ? 24 : 16;
  if (!p.decode_only) {
    const std::int64_t stride = p.vae.spatial_stride();
    const std::int64_t ph = p.dit.patch_size[1] * stride, pw = p.dit.patch_size[2] * stride;
    if (p.i2v && p.dit.kind == DitKind::kTI2V) {
      // best_output_size with the area asked, LANCZOS resize and centre crop (textimage2video.py:462-477).
      p.max_width = request.width;
      p.max_height = request.height;
      const auto size = best_output_size(p.picture.width, p.picture.height, pw, ph,
                                         static_cast<double>(request.width) * request.height);
      if (size[0] > kMaxSide || size[1] > kMaxSide)
        throw invalid("--size " + std::to_string(request.width) + "*" + std::to_string(request.height) + " with a " +
                      std::to_string(p.picture.width) + "x" + std::to_string(p.picture.height) + " picture gives " +
                      std::to_string(size[0]) + "x" + std::to_string(size[1]) + ", beyond " + std::to_string(kMaxSide) +
                      " a side: give a smaller area");
      const Rgb8Video cropped =
          ti2v_resize_and_crop(p.picture, static_cast<double>(request.width) * request.height, std::max(ph, pw));
      p.request.width = cropped.width;
      p.request.height = cropped.height;
      p.image = picture_tensor(cropped);
    } else if (p.i2v) {
      p.max_width = request.width;
      p.max_height = request.height;
      const auto size = image_to_video_size(request.width, request.height, p.image.size(2), p.image.size(1), stride,
                                            p.dit.patch_size[1], p.dit.patch_size[2]);
      if (size[0] < pw || size[1] < ph)
        throw invalid("--size " + std::to_string(request.width) + "*" + std::to_string(request.height) +
                      " is too small an area for a " + std::to_string(p.image.size(2)) + "x" +
                      std::to_string(p.image.size(1)) + " picture of this shape");
      if (size[0] > kMaxSide || size[1] > kMaxSide)
        throw invalid("--size " + std::to_string(request.width) + "*" + std::to_string(request.height) + " with a " +
                      std::to_string(p.image.size(2)) + "x" + std::to_string(p.image.size(1)) + " picture gives " +
                      std::to_string(size[0]) + "x" + std::to_string(size[1]) + ", beyond " + std::to_string(kMaxSide) +
                      " a side: give a smaller area");
      p.request.width = static_cast<int>(size[0]);
      p.request.height = static_cast<int>(size[1]);
    }
    if (p.request.height % ph || p.request.width % pw)
      throw invalid("width and height must be multiples of " + std::to_string(pw) + " x " + std::to_string(ph) +
                    " for this model" +
                    (p.dit.kind == DitKind::kTI2V ? " (TI2V-5B: patch 2 x Wan2.2 VAE stride 16; e.g. 1280*704)" : "") +
                    ", got " + std::to_string(p.request.width) + " x " + std::to_string(p.request.height));
    const std::int64_t f_lat = (request.frames - 1) / p.vae.temporal_stride() + 1;
    p.latent_shape = {p.vae.z_dim, f_lat, p.request.height / stride, p.request.width / stride};
    p.seq_len = f_lat / p.dit.patch_size[0] * (p.latent_shape[2] / p.dit.patch_size[1]) *
                (p.latent_shape[3] / p.dit.patch_size[2]);
    if (p.request.cache.enabled()) {
      p.cache = step_cache_profile(p);
      p.notes.push_back("--cache " + step_cache_name(p.request.cache) + ": " + p.cache->source);
      if (!p.cache->note.empty())
        p.notes.push_back("--cache " + step_cache_name(p.request.cache) + ": " + p.cache->note);
    }
  }
  return p;
}

}  // namespace wan
