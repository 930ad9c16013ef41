// Public API of a single-process generation: request, progress and result types. No torch types, so
// the CLI and the studio include it without the heavy headers.
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "wan/types.h"

namespace wan {

// Where the weights are. `model_dir` is an official Wan2.1 folder or a ComfyUI models folder
// (diffusion_models/, text_encoders/, vae/); the single-file fields pick among several files there,
// or name files anywhere when model_dir is empty.
// Which Wan2.2 A14B expert a LoRA is merged into. LoRAs for A14B are trained per expert (files named
// *_high_noise* / *_low_noise*, applied in ComfyUI by one LoraLoader per expert); kBoth merges one file into
// both. A model with one DiT takes only kBoth (GenerationPlan refuses the others, kInvalidArgument).
enum class LoraExpert { kBoth, kHighNoise, kLowNoise };
const char* lora_expert_name(LoraExpert expert);  // "both", "high_noise", "low_noise"
// Parses lora_expert_name's spelling; throws Error(kInvalidArgument) naming the choices.
LoraExpert parse_lora_expert(const std::string& name);

// A LoRA applied to the DiT: its file and strength (the multiplier of its delta, ComfyUI's
// strength_model; 1 as trained, 0 off, negative to subtract), and for Wan2.2 A14B the expert it targets.
struct LoraFile {
  std::string path;
  double strength = 1.0;
  LoraExpert expert = LoraExpert::kBoth;
};

struct ModelFiles {
  std::string model_dir;
  std::string dit;  // file, *.safetensors.index.json, or a name inside diffusion_models/
  std::string t5;   // umT5 encoder (official .pth or ComfyUI/HF safetensors)
  std::string vae;
  std::string tokenizer;  // spiece.model, or a folder holding it
  std::string clip;       // CLIP vision tower (image-to-video): file, or a name inside clip_vision/
  // Wan2.2 A14B from two files (ComfyUI's *_high_noise_* and *_low_noise_*): the high-noise expert; `dit`
  // is then the low-noise one. An official A14B folder finds both in high_noise_model/ and low_noise_model/.
  std::string dit_high;
  // LoRAs merged into the DiT when it loads, in this order (a file, or a name inside loras/).
  std::vector<LoraFile> loras;
  bool lora_allow_partial = false;  // a LoRA some of whose entries match no DiT weight: applied, not refused
};

// The flow-matching solver: UniPC (FlowUniPCMultistepScheduler, wan/utils/fm_solvers_unipc.py) or DPM++
// (FlowDPMSolverMultistepScheduler, wan/utils/fm_solvers.py), as generate.py's --sample_solver; or the
// step-distilled models' fixed timestep list with an Euler update (LightX2V's WanStepDistillScheduler,
// for StepDistill-CfgDistill checkpoints and their 4-step LoRAs).
enum class SamplerKind { kUniPC, kDpmPlusPlus, kDistill };
const char* sampler_name(SamplerKind kind);  // "unipc", "dpm++", "distill"
SamplerKind parse_sampler(
    const std::string& name);  // "unipc", "dpm++" (or "dpmpp"), "distill"; throws wan::Error(kInvalidArgument)

// The distill sampler's defaults (LightX2V configs/distill/wan21/*_4step_*.json and wan22/*.json):
// denoising_step_list [1000, 750, 500, 250], sample_shift 5, no classifier-free guidance (enable_cfg
// false: guidance 1, one forward per step).
constexpr int kDistillDefaultSteps = 4;
constexpr double kDistillDefaultShift = 5.0;
constexpr double kDistillDefaultGuidance = 1.0;
// Whether a DiT or LoRA file's name says it is step-distilled (LightX2V's "StepDistill", "lightx2v",
// "4step"; "CausVid", "Lightning"): the studio then suggests the distill sampler. The files themselves
// do not say; a name is a hint, never a setting.
bool looks_step_distilled(const std::string& path);

// Step caching: a step whose DiT input has barely changed since the last computed step skips the
// blocks and adds the residual (blocks' output - input) that step cached, per pass (conditional and
// unconditional). TeaCache (ali-vilab/TeaCache, TeaCache4Wan2.1, the use_ret_steps variant): the
// relative L1 change of the timestep modulation e0, rescaled by the published polynomial of the model,
// accumulated until it reaches `threshold`. MagCache (Zehong-Ma/MagCache): the published magnitude-ratio
// curve of the model; over the steps skipped in a row, the sum of |1 - the running product of ratios|
// must stay under `threshold`, and at most `max_skips` steps in a row are skipped. Every rank makes the same decision
// at the same step: both rules read only values every rank holds alike (the step index, the curve, the modulation
// vector of the step's timestep), and one decision covers both passes.
enum class StepCacheKind { kNone, kTeaCache, kMagCache };
struct StepCacheSettings {
  StepCacheKind kind = StepCacheKind::kNone;
  double threshold = 0;  // >= 0; 0 skips nothing (the latent is the uncached one, bit for bit)
  // Steps at the start that are never skipped; not given: TeaCache 5 (its ret_steps), MagCache 20 % of
  // the steps (retention_ratio 0.2). Wan2.2 A14B, as MagCache4Wan2.2: text-to-video keeps a window at the
  // start of each expert's steps (20 % of that expert's, or WARMUP steps each), image-to-video every
  // high-noise step and then 20 % (or WARMUP) of the low-noise ones.
  std::optional<int> warmup;
  int max_skips = 2;  // MagCache's K: skipped steps in a row at most (TeaCache has no such bound)
  bool enabled() const { return kind != StepCacheKind::kNone; }
};
// "none", "teacache:0.2", "teacache:0.2:3" (threshold, warm-up steps), "magcache:0.12[:WARMUP[:K]]".
std::string step_cache_name(const StepCacheSettings& settings);
// Parses step_cache_name's forms; throws wan::Error(kInvalidArgument) naming the part that is wrong.
StepCacheSettings parse_step_cache(const std::string& text);

// The ranges validate_settings (pipeline) and the studio's form accept. Width and height: multiples of
// 16 (the DiT's 2x2 patch over the VAE's 8x stride, Wan2.1); 8192 is far past every Wan checkpoint's
// training size (1280x720) and within the DiT's 1024 RoPE positions per axis (8192 / 16 = 512); what a
// machine can hold is the memory check's to say (pipeline/memory_check.h). Frames: 4n + 1 (the VAE's 4x time stride,
// the first frame alone); 1001 is 251 latent frames, within the DiT's 1024 RoPE positions per axis
// (wan/modules/model.py rope_params(1024, ...)). Steps: at least 1; 1000 is the flow-matching
// schedulers' num_train_timesteps (wan/utils/fm_solvers_unipc.py), past which steps repeat timesteps.
constexpr int kSideMultiple = 16, kMinSide = 16, kMaxSide = 8192;
constexpr int kMaxFrames = 1001;
constexpr int kMaxSteps = 1000;

struct GenerationRequest {
  std::string prompt;
  // Image-to-video: the start picture (PNG, JPEG, ...); needs an I2V model. width x height is then the
  // largest area of the output, whose shape follows the picture's aspect (as the reference's max_area).
  std::string image;
  std::string negative_prompt;  // empty: the reference's default negative prompt
  int width = 832;
  int height = 480;
  int frames = 81;  // 4n + 1
  // Not given (nullopt): the task's default, filled in by resolve_defaults() (task_defaults below).
  std::optional<int> steps;
  std::optional<double> shift;     // flow-matching sigma shift
  std::optional<double> guidance;  // classifier-free guidance scale (Wan2.2 A14B: the low-noise expert's)
  // Wan2.2 A14B (two experts): the high-noise expert's guidance scale; not given: `guidance`'s, or the
  // model's default pair when that is not given either. Ignored by single-DiT models.
  std::optional<double> guidance_high;
  // Wan2.2 A14B: the high-noise expert runs at the steps whose timestep t has t >= boundary * 1000
  // (text2video.py); not given: the model's (0.875 text-to-video, 0.900 image-to-video). In (0, 1].
  std::optional<double> boundary;
  std::int64_t seed = -1;  // < 0: random
  SamplerKind sampler = SamplerKind::kUniPC;
  // The distill sampler's timesteps of the 1000-step training schedule, strictly decreasing, each in
  // 1..1000 (LightX2V's denoising_step_list); empty: `steps` evenly spaced from 1000 (4: 1000,750,500,250).
  // Only with SamplerKind::kDistill; its length is then the step count.
  std::vector<int> denoising_step_list;
  StepCacheSettings cache;     // step caching (above); off by default
  Dtype dtype = Dtype::kAuto;  // DiT and T5 weights (auto: bf16 on a GPU, fp32 on the CPU; wan/types.h)
  // DiT and T5 weights the files store in float8: dequantized at load, or kept in float8 (wan/types.h).
  Fp8Weights fp8_weights = Fp8Weights::kDequantize;
  Device device;  // the CPU by default (where umT5 runs: the distributed config's t5_cpu)
  // Draw the initial noise with the CPU generator (as ComfyUI does): a seed then gives the same noise on
  // every device, the CPU included. Off: the device's own generator, as the official generate.py
  // (torch.Generator(device).manual_seed(seed)), whose CUDA noise differs from the CPU's.
  bool cpu_noise = false;
  ModelFiles model;

  // Outputs (at least one of output / frames_dir / save_latent).
  std::string output;         // video file (.mp4, .mkv, .mov): H.264, yuv420p
  std::string frames_dir;     // PNG frames (a new folder)
  std::string save_latent;    // final latent before decoding (.safetensors)
  std::string decode_latent;  // skip sampling: decode this saved latent instead
  // Frames per second of the video, 1 to 240; not given: the model's (16; Wan2.2 TI2V-5B 24: the
  // official configs' sample_fps), set by make_plan.
  std::optional<int> fps;
  int crf = 19;  // H.264 constant rate factor, 0 (lossless) .. 51
  // Replace an existing video, its sidecar and --save-latent file. Off: a run refuses to start when
  // one exists (a file that is not a sidecar where the sidecar goes is never replaced, even with it).
  bool overwrite = false;
  // Start even when the memory estimate says the run cannot fit in what the device has free
  // (pipeline/memory_check.h); off: such a run is refused before loading (exit 11).
  bool force = false;
};

// Image-to-video's output size for a largest area of max_width x max_height and a picture of
// image_width x image_height, as WanI2V.generate computes it: the picture's aspect kept, each side a
// multiple of stride * patch (8 * 2 for Wan2.1). Returns {width, height}; a side is 0 when the area
// is too small for the picture's shape.
std::array<std::int64_t, 2> image_to_video_size(std::int64_t max_width, std::int64_t max_height,
                                                std::int64_t image_width, std::int64_t image_height,
                                                std::int64_t stride = 8, std::int64_t patch_h = 2,
                                                std::int64_t patch_w = 2);

// Wan2.2 TI2V-5B's output size for a picture (textimage2video.py: best_output_size(w, h, 32, 32,
// max_area), wan/utils/utils.py:202-225): {width, height}, multiples of 32; {0, 0} when the area is too
// small for one 32 x 32 block.
std::array<std::int64_t, 2> text_image_to_video_size(std::int64_t max_width, std::int64_t max_height,
                                                     std::int64_t image_width, std::int64_t image_height);

// What a request makes, from its inputs: a start picture makes it image-to-video.
enum class Task { kTextToVideo, kImageToVideo };
Task request_task(const GenerationRequest& request);
const char* task_name(Task task);  // "t2v", "i2v" (the official generate.py's --task prefixes)

// The official defaults of a task (wan/configs/wan_t2v_*.py and wan_i2v_14B.py: sample_steps,
// sample_shift, sample_guide_scale; generate.py _validate_args: i2v samples 40 steps, and shift 3.0 at
// 832*480 or 480*832).
// Wan2.2 A14B's defaults, per task: wan/configs/wan_t2v_A14B.py (sample_steps 40, sample_shift 12.0,
// sample_guide_scale (3.0, 4.0) as (low-noise, high-noise), boundary 0.875) and wan/configs/wan_i2v_A14B.py
// (40 steps, shift 5.0, guide (3.5, 3.5), boundary 0.900).
struct ExpertDefaults {
  int steps = 40;
  double shift = 12.0;
  double guidance_low = 3.0, guidance_high = 4.0;
  double boundary = 0.875;  // the high-noise expert runs while t >= boundary * 1000
};
ExpertDefaults expert_defaults(Task task);

struct TaskDefaults {
  int steps = 50;
  double shift = 5.0;
  double guidance = 5.0;
};
TaskDefaults task_defaults(Task task, int width, int height);

// The request with every "not given" field set to its task's default. The one place defaults are
// decided: the CLI, the studio and every rank call it. Never throws.
GenerationRequest resolve_defaults(const GenerationRequest& request);

enum class Phase : int {
  kNone = 0,  // never a valid running state
  kStarting,
  kLoading,
  kEncodingText,
  kSampling,
  kDecoding,
  kWriting,
  kDone,
  kFailed,
};
const char* phase_name(Phase phase);  // short key: "text", "loading", "sampling", ... (WAN_TEST_OOM, sidecars)
// The phase in a message's words: "while <this>": "encoding the prompt", "loading the DiT", "sampling",
// "decoding the latent (VAE)", "writing the outputs", "checking the settings and model files".
const char* phase_description(Phase phase);

struct ProgressEvent {
  Phase phase = Phase::kNone;
  int step = 0;  // completed units of this phase (sampling steps, decoded frames)
  int total = 0;
  double seconds_per_step = 0;  // mean over the phase so far
  double elapsed_seconds = 0;   // since the start of the run
  std::string detail;           // e.g. which model is loading
};
using ProgressFn = std::function<void(const ProgressEvent&)>;

struct GenerationResult {
  std::string video_path, sidecar_path, frames_dir, latent_path;
  std::int64_t seed = 0;
  int frames = 0, width = 0, height = 0, fps = 0;
  double load_seconds = 0, text_seconds = 0, sampling_seconds = 0, decode_seconds = 0, write_seconds = 0;
  double image_seconds = 0;              // image-to-video: CLIP and VAE encode of the start picture
  std::int64_t dit_forwards = 0;         // DiT forwards this process ran while sampling (guidance 1: one per step)
  std::int64_t dit_forwards_cached = 0;  // of those, forwards whose blocks the step cache skipped (--cache)
  std::vector<int> cached_steps;         // 1-based steps whose blocks the step cache skipped
  double expert_swap_seconds = 0;        // Wan2.2 A14B with idle_expert_on_host: the boundary's copy (in sampling)
};

// Validates everything it can before loading (settings, output paths, model files), then runs
// text encoding, sampling and decoding. Throws wan::Error; on failure no output file is left behind
// (when sampling finished but decoding or writing failed, the latent is kept beside the output and
// the message says where).
GenerationResult generate(const GenerationRequest& request, const ProgressFn& progress = {});

}  // namespace wan
