// wan::generate: plan, encode, denoise, decode, write; progress events, timings, the JSON sidecar.
#include <torch/torch.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/memory.h"
#include "core/out_of_memory.h"
#include "core/runtime.h"
#include "model/step_cache.h"
#include "pipeline/memory_check.h"
#include "pipeline/rank_hooks.h"
#include "pipeline/text_to_video.h"
#include "sampling/schedule.h"
#include "wan/error.h"
#include "wan/estimate.h"
#include "wan/job.h"
#include "wan/model_info.h"
#include "wan/version.h"
#include "weights/file_util.h"
#include "weights/safetensors.h"

namespace wan {
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

nlohmann::json file_entry(const std::string& path) {
  if (path.empty()) return nullptr;
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  return {{"path", fs::absolute(path).string()}, {"bytes", ec ? 0 : size}};
}

// Every setting that made the video, in the sidecar and in a saved latent's metadata
// ("wan-studio-sidecar/2"): the request as it ran and the config, through the job codec (wan/job.h),
// then what the engine found (task, output size, model files with their sizes).
nlohmann::json settings_json(const RunPlan& p, const DistConfig& config) {
  GenerationRequest as_ran = p.request;  // seed drawn, defaults resolved, negative prompt filled in
  if (p.i2v) {                           // the area asked for: the output size follows from it and the picture
    as_ran.width = p.max_width;
    as_ran.height = p.max_height;
  }
  nlohmann::json j;
  j["format"] = kSidecarFormat;
  j["request"] = nlohmann::json::parse(request_to_json(as_ran));
  j["config"] = nlohmann::json::parse(dist_config_to_json(config));
  j["task"] = task_name(request_task(p.request));
  j["video"] = {{"width", p.request.width},
                {"height", p.request.height},
                {"frames", p.request.frames},
                {"fps", p.request.fps.value_or(0)}};
  if (p.i2v) j["image"] = file_entry(p.request.image);
  j["model"] = {{"layout", p.files.layout},
                {"dit", file_entry(p.files.dit)},
                {"dit_config", file_entry(p.files.dit_config)},
                {"t5", file_entry(p.files.t5)},
                {"vae", file_entry(p.files.vae)},
                {"tokenizer", file_entry(p.files.tokenizer)},
                {"clip", file_entry(p.files.clip)},
                {"variant", p.dit.label()}};
  if (p.moe) {  // Wan2.2 A14B: the high-noise expert beside `dit` (the low-noise one)
    j["model"]["dit_high"] = file_entry(p.files.dit_high);
    j["model"]["dit_high_config"] = file_entry(p.files.dit_high_config);
  }
  if (!p.lora_files.empty()) {  // each LoRA's file as found, with its size (the request keeps them as typed)
    nlohmann::json loras = nlohmann::json::array();
    for (const LoraFile& l : p.lora_files) {
      nlohmann::json entry = file_entry(l.path);
      entry["strength"] = l.strength;
      entry["expert"] = lora_expert_name(l.expert);
      loras.push_back(entry);
    }
    j["model"]["loras"] = loras;
  }
  return j;
}

std::string now_iso8601() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

std::string sidecar_path_for(const GenerationRequest& r) {
  if (!r.output.empty()) return fs::path(r.output).replace_extension(".json").string();
  if (!r.frames_dir.empty()) return r.frames_dir + ".json";
  return {};
}

void save_latent(const std::string& path, const torch::Tensor& latent, const nlohmann::json& settings) {
  write_safetensors(path, {{"latent", latent.to(torch::kCPU, torch::kFloat32).contiguous()}},
                    {{"format", "wan-studio-latent/1"}, {"settings", settings.dump()}});
}

torch::Tensor load_latent(const std::string& path, const RunPlan& plan, nlohmann::json* settings) {
  auto file = SafetensorsFile::open(path);
  if (!file->contains("latent"))
    throw Error(ErrorCode::kCorruptFile, path + ": no 'latent' tensor; not a latent saved by --save-latent");
  const std::vector<std::int64_t>& shape = file->info("latent").shape;
  if (shape.size() != 4 || shape[0] != plan.vae.z_dim)
    throw Error(ErrorCode::kModelMismatch, path + ": latent shape does not fit this VAE (expected [" +
                                               std::to_string(plan.vae.z_dim) + ", F, h, w])");
  // The video it decodes to within the bounds `wan generate` takes, before anything is decoded.
  const std::int64_t frames = (shape[1] - 1) * plan.vae.temporal_stride() + 1;
  const std::int64_t height = shape[2] * plan.vae.spatial_stride(), width = shape[3] * plan.vae.spatial_stride();
  if (shape[1] < 1 || frames > kMaxFrames || height < kMinSide || width < kMinSide || height > kMaxSide ||
      width > kMaxSide)
    throw Error(ErrorCode::kCorruptFile,
                path + ": latent of shape [" + std::to_string(shape[0]) + ", " + std::to_string(shape[1]) + ", " +
                    std::to_string(shape[2]) + ", " + std::to_string(shape[3]) + "] decodes to " +
                    std::to_string(frames) + " frames of " + std::to_string(width) + "x" + std::to_string(height) +
                    ", outside what the engine makes (1 to " + std::to_string(kMaxFrames) + " frames, sides " +
                    std::to_string(kMinSide) + " to " + std::to_string(kMaxSide) + ")");
  torch::Tensor latent = file->view("latent").to(torch::kFloat32).clone();
  const auto it = file->metadata().find("settings");
  if (it != file->metadata().end()) *settings = nlohmann::json::parse(it->second, nullptr, false);
  if (settings->is_discarded()) *settings = nlohmann::json::object();
  return latent;
}

// The command that finishes a run from its kept latent.
std::string resume_command(const std::string& latent, const GenerationRequest& r) {
  std::string command = "wan generate --decode-latent " + latent;
  for (const auto& [flag, value] : {std::pair<const char*, const std::string&>{"--model", r.model.model_dir},
                                    {"--dit", r.model.dit},
                                    {"--t5", r.model.t5},
                                    {"--vae", r.model.vae}})
    if (!value.empty()) command += std::string(" ") + flag + " " + value;
  return command + " --output ...";
}

// What a failure message needs to know of the run, copied as it goes (the plan itself is gone by the
// time an exception reaches the catch).
struct RunState {
  Phase phase = Phase::kNone;
  bool planned = false;
  torch::Device device = torch::kCPU;
  ModelFiles model;
  int width = 0, height = 0, frames = 0;
  Dtype dtype = Dtype::kAuto;
  Fp8Weights fp8_weights = Fp8Weights::kDequantize;
};

// One line: the device and phase, what the allocation asked and what was free, the estimate of this
// phase and the settings that lower it most (wan::memory_remedies).
Error out_of_memory_error(const AllocationFailure& failure, const RunState& run, const DistConfig& config) {
  std::string message = "out of memory on " + run.device.str() + " while " + phase_description(run.phase);
  const std::int64_t free = run.device.is_cuda() ? device_free_bytes(run.device.has_index() ? run.device.index() : 0)
                                                 : host_available_bytes();
  if (failure.requested_bytes > 0) message += ": an allocation of " + format_bytes(failure.requested_bytes) + " failed";
  if (free >= 0) message += std::string(failure.requested_bytes > 0 ? " with " : ": ") + format_bytes(free) + " free";
  if (run.planned) {
    try {
      const ModelDims dims = inspect_model(run.model).dims;
      EstimateSettings s;
      s.width = run.width;
      s.height = run.height;
      s.frames = run.frames;
      s.dtype = run.dtype;
      s.fp8_weights = run.fp8_weights;
      s.gpu = run.device.is_cuda();
      s.config = config;
      const std::string phase = phase_name(run.phase);
      const std::int64_t need = phase_need_bytes(dims, s, phase);
      message += "; this phase needs about " + format_bytes(need) + (s.gpu ? " per GPU" : " of host memory") +
                 " by the estimate";
      const std::vector<MemoryRemedy> remedies = memory_remedies(dims, s, phase);
      if (remedies.empty()) {
        message += "; no setting lowers that: free memory on this machine or use one with more";
      } else {
        // Decoding a kept latent keeps its size and frames: these changes are for a new run.
        const bool after_sampling = run.phase == Phase::kDecoding || run.phase == Phase::kWriting;
        message += after_sampling ? "; what would help a new run most, by the estimate:"
                                  : "; what helps most, by the estimate:";
        for (std::size_t i = 0; i < remedies.size(); ++i)
          message += std::string(i ? "," : "") + " " + remedies[i].flags + " (" + remedies[i].description + ", " +
                     format_bytes(remedies[i].bytes) + ")";
      }
    } catch (const std::exception&) {
      // The model cannot be inspected again: the message goes without remedies.
    }
  }
  return Error(ErrorCode::kOutOfMemory, message);
}

// Any exception as the engine's error: allocation failures named (kOutOfMemory), LibTorch errors
// without their C++ stack trace unless WAN_VERBOSE asks for it.
Error engine_error(const std::exception& e, const RunState& run, const DistConfig& config) {
  const AllocationFailure failure = classify_allocation_failure(e);
  if (!failure.out_of_memory || dynamic_cast<const Error*>(&e)) return to_engine_error(e);
  if (verbose_errors()) std::fprintf(stderr, "wan: %s\n", e.what());
  return out_of_memory_error(failure, run, config);
}

// The latent at `preferred`, or when that cannot be written in the first fallback folder that can;
// returns the path it went to, and the first failure in `*failed` (empty when `preferred` worked).
std::string keep_latent(const std::string& preferred, const torch::Tensor& latent, const nlohmann::json& settings,
                        std::string* failed) {
  try {
    save_latent(preferred, latent, settings);
    return preferred;
  } catch (const Error& e) {
    *failed = e.what();
  }
  const std::string stem = fs::path(preferred).filename().string();
  const std::string base = stem.substr(0, stem.size() - std::string(".latent.safetensors").size());
  std::string last_error = *failed;
  for (const std::string& dir : latent_fallback_dirs()) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    for (int n = 1; n < 1000; ++n) {  // never over an earlier kept latent
      const fs::path path = fs::path(dir) / (base + (n > 1 ? "-" + std::to_string(n) : "") + ".latent.safetensors");
      if (something_at(path.string())) continue;
      try {
        save_latent(path.string(), latent, settings);
        return path.string();
      } catch (const Error& e) {
        last_error = e.what();
      }
      break;
    }
  }
  throw Error(ErrorCode::kIo, "the sampled latent could not be kept anywhere: " + *failed + "; " + last_error);
}

// `path` when nothing is there, else the first free "<stem>-N<extension>" beside it (N from 2).
std::string first_unused_path(const std::string& path) {
  const fs::path p(path);
  if (!something_at(path)) return path;
  for (int n = 2;; ++n) {
    const fs::path candidate = p.parent_path() / (p.stem().string() + "-" + std::to_string(n) + p.extension().string());
    if (!something_at(candidate.string())) return candidate.string();
  }
}

}  // namespace

std::string rescue_latent_path(const GenerationRequest& r) {
  const std::string base = !r.output.empty() ? fs::path(r.output).replace_extension("").string() : r.frames_dir;
  return base + ".latent.safetensors";
}

std::vector<std::string> latent_fallback_dirs() {
  std::vector<std::string> dirs;
  const char* state = std::getenv("XDG_STATE_HOME");
  const char* home = std::getenv("HOME");
  if (state && *state)
    dirs.push_back((fs::path(state) / "wan-studio" / "latents").string());
  else if (home && *home)
    dirs.push_back((fs::path(home) / ".local" / "state" / "wan-studio" / "latents").string());
  const char* tmp = std::getenv("TMPDIR");
  dirs.push_back(tmp && *tmp ? tmp : "/tmp");
  return dirs;
}

GenerationResult generate(const GenerationRequest& request, const ProgressFn& progress) {
  Job job;
  job.request = request;
  job.config.backend = resolve_backend(job.config, request.device);
  return generate_with_hooks(job, progress, RankHooks{});
}

namespace {

GenerationResult run_generation(const Job& job, const ProgressFn& progress, const RankHooks& hooks, RunState& run) {
  const GenerationRequest& request = job.request;
  const Clock::time_point t_start = Clock::now();
  GenerationResult result;
  auto report = [&](Phase phase, int step, int total, double s_per_step, const std::string& detail) {
    if (phase != run.phase && phase != Phase::kDone) {
      run.phase = phase;
      maybe_inject_out_of_memory(phase_name(phase), hooks.rank, run.device.is_cuda(),
                                 run.device.has_index() ? run.device.index() : 0);
    }
    if (progress) progress({phase, step, total, s_per_step, seconds_since(t_start), detail});
  };
  run.device = to_torch_device(request.device);
  report(Phase::kStarting, 0, 0, 0, "checking settings and model files");
  const RunPlan plan = make_plan(request, job.config);
  if (hooks.on_note && hooks.output_rank)
    for (const std::string& note : plan.notes) hooks.on_note(note);
  // Refuse what cannot fit, before loading: this rank's GPU, or the host for a run of one process (a
  // launched CPU world was checked once by its launcher, before any rank started).
  if (plan.device.is_cuda() || job.config.world_size <= 1) {
    GenerationRequest as_planned = plan.request;
    if (plan.device.is_cuda()) as_planned.device.index = plan.device.has_index() ? plan.device.index() : 0;
    check_memory_fits(inspect_model(plan.request.model).dims, as_planned, job.config);
  }
  run.planned = true;
  run.device = plan.device;
  run.model = plan.request.model;
  run.width = plan.request.width;
  run.height = plan.request.height;
  run.frames = plan.request.frames;
  run.dtype = plan.request.dtype;
  run.fp8_weights = plan.request.fp8_weights;
  result.seed = plan.request.seed;
  nlohmann::json settings = settings_json(plan, job.config);
  std::string rescue_copy;    // latent saved before decoding (save_latent_before_decode)
  std::string staged_latent;  // this run's latent while an earlier --save-latent file waits to be replaced
  // The staged latent takes the --save-latent name: the run has succeeded.
  auto place_staged_latent = [&] {
    if (staged_latent.empty()) return;
    std::error_code ec;
    fs::rename(staged_latent, plan.request.save_latent, ec);
    if (ec)
      throw Error(ErrorCode::kIo, "cannot rename " + staged_latent + " to " + plan.request.save_latent + ": " +
                                      ec.message() + " (the sampled latent is in " + staged_latent + ")");
    result.latent_path = plan.request.save_latent;
    staged_latent.clear();
  };
  torch::Tensor latent;
  // A latent kept somewhere else than asked: say where, at once.
  struct ForgetKept {
    ~ForgetKept() { note_kept_latent(""); }
  } forget_kept;
  auto keep = [&](const std::string& preferred) {
    std::string failed;
    const std::string kept = keep_latent(preferred, latent, settings, &failed);
    note_kept_latent(kept);
    if (!failed.empty() && hooks.on_note)
      hooks.on_note(failed + ": the sampled latent is kept in " + kept + " instead");
    return kept;
  };
  if (plan.decode_only) {
    nlohmann::json saved;
    latent = load_latent(plan.request.decode_latent, plan, &saved);
    // The settings that made the latent (its metadata), with this run's outputs.
    if (saved.is_object() && !saved.empty()) {
      try {
        const Job made = job_from_sidecar(saved.dump());
        GenerationRequest r = made.request;
        r.output = request.output;
        r.frames_dir = request.frames_dir;
        r.save_latent = request.save_latent;
        r.decode_latent = request.decode_latent;
        settings["request"] = nlohmann::json::parse(request_to_json(r));
        settings["config"] = nlohmann::json::parse(dist_config_to_json(made.config));
        result.seed = r.seed;
        if (saved.contains("task")) settings["task"] = saved["task"];
        if (saved.contains("model") && saved["model"].is_object())
          settings["model"]["dit"] = saved["model"].value("dit", nlohmann::json());
      } catch (const Error&) {
        // Metadata that is not ours: the sidecar records the decode alone.
      }
    }
    settings["decoded_from"] = file_entry(plan.request.decode_latent);
  } else {
    Clock::time_point t0 = Clock::now();
    report(Phase::kEncodingText, 0, 2, 0, "umT5 on " + plan.t5_device.str());
    const TextContexts text = encode_prompts(plan, hooks.t5_sharding);
    // The reference cuts a long prompt at the text encoder's length without a word; say so.
    for (const auto& [what, dropped] : {std::pair<const char*, std::int64_t>{"prompt", text.prompt_tokens_dropped},
                                        {"negative prompt", text.negative_tokens_dropped}})
      if (dropped > 0 && hooks.on_note)
        hooks.on_note(std::string("the ") + what + " is " + std::to_string(text.text_len + dropped) +
                      " tokens long with the end mark; umT5 reads " + std::to_string(text.text_len) + ": its last " +
                      std::to_string(dropped) + " tokens are cut");
    release_free_heap();  // umT5 is gone
    result.text_seconds = seconds_since(t0);
    t0 = Clock::now();
    if (plan.i2v)
      report(Phase::kEncodingText, 1, 2, 0,
             plan.dit.has_clip_input() ? "start picture: CLIP and VAE encode" : "start picture: VAE encode");
    const ImageContext image = encode_image(plan);
    result.image_seconds = seconds_since(t0);
    t0 = Clock::now();
    report(Phase::kLoading, 0, 1, 0, plan.moe ? "DiT experts " + plan.dit.label() : "DiT " + plan.dit.label());
    // Wan2.2 A14B with idle_expert_on_host on a GPU: the low-noise expert waits in pinned host memory
    // until the boundary (sharded experts both stay sharded: the config refuses the two together).
    const bool idle_on_host =
        plan.moe && job.config.idle_expert_on_host && !plan.device.is_cpu() && !hooks.dit_sharding;
    WanModel dit = load_plan_dit(plan, hooks.dit_sharding, /*high_noise=*/false, /*on_host=*/idle_on_host);
    WanModel high_noise{nullptr};  // Wan2.2 A14B's second expert
    if (plan.moe) high_noise = load_plan_dit(plan, hooks.dit_sharding, /*high_noise=*/true);
    release_free_heap();  // the loading's staging buffers
    result.load_seconds = seconds_since(t0);
    t0 = Clock::now();
    report(Phase::kSampling, 0, plan.request.steps.value(), 0, "");
    const VelocityFn velocity =
        hooks.make_velocity ? hooks.make_velocity(dit, text, image, plan.request.guidance.value()) : VelocityFn{};
    HighNoiseExpert high;
    if (plan.moe) {
      high.model = &high_noise;
      if (hooks.make_velocity)
        high.velocity = hooks.make_velocity(high_noise, text, image, plan.request.guidance_high.value());
      if (idle_on_host)
        high.before_low_noise = [&] {
          // The timesteps only fall: the high-noise expert is done. Free it, then copy the other in.
          const Clock::time_point swap0 = Clock::now();
          high_noise->release_weights();
          release_free_heap();
          dit->move_to(plan.device);
          result.expert_swap_seconds = seconds_since(swap0);
        };
    }
    // Wan2.2 A14B: which expert ran the step, for the progress line.
    const SigmaSchedule schedule = make_schedule(plan.sampler, plan.request.steps.value(), plan.request.shift.value(),
                                                 plan.request.denoising_step_list);
    const auto expert_of = [&](int step) -> std::string {
      if (!plan.moe || step < 1 || step > static_cast<int>(schedule.timesteps.size())) return "";
      return runs_high_noise_expert(plan, schedule.timesteps[step - 1]) ? "high-noise expert" : "low-noise expert";
    };
    latent = denoise(
        plan, dit, text, initial_noise(plan),
        [&](int step, int total, const torch::Tensor& current) {
          if (hooks.on_step) hooks.on_step(step, total, current);
          std::string detail = expert_of(step);
          if (dit->step_cache && !dit->step_cache->skipped_steps().empty() &&
              dit->step_cache->skipped_steps().back() == step - 1)
            detail += std::string(detail.empty() ? "" : ", ") + "blocks from the cache";
          report(Phase::kSampling, step, total, seconds_since(t0) / step, detail);
        },
        velocity, image, high);
    result.sampling_seconds = seconds_since(t0);
    result.dit_forwards = dit->forward_count + (plan.moe ? high_noise->forward_count : 0);
    if (dit->step_cache) {
      result.dit_forwards_cached = dit->step_cache->skipped_forwards();
      for (int s : dit->step_cache->skipped_steps()) result.cached_steps.push_back(s + 1);
    }
    // NaN or infinity in the latent (weights that hold them, a dtype that overflowed) would be written as a
    // black or noise video with success: refused instead, before anything is written.
    if (!torch::isfinite(latent).all().item<bool>())
      throw Error(ErrorCode::kCorruptFile,
                  "the sampling produced NaN or infinite values, so nothing was written: the DiT, text encoder or "
                  "LoRA files hold non-finite numbers, or --dtype fp16 overflowed (try bf16 or fp32)");
    if (hooks.after_sampling) hooks.after_sampling();
    high = HighNoiseExpert{};
    high_noise = WanModel(nullptr);
    dit = WanModel(nullptr);  // free the DiT before the VAE runs
    if (!hooks.output_rank) {
      report(Phase::kDone, 1, 1, 0, "");
      return result;
    }
    if (!plan.request.save_latent.empty()) {
      // An earlier file there (--overwrite) is replaced only when the whole run has succeeded: until
      // then this run's latent waits under a name of its own beside it.
      if (something_at(plan.request.save_latent))
        staged_latent = keep(first_unused_path(plan.request.save_latent));
      else
        result.latent_path = keep(plan.request.save_latent);
    } else if (hooks.save_latent_before_decode && (!plan.request.output.empty() || !plan.request.frames_dir.empty())) {
      rescue_copy = keep(rescue_latent_path(plan.request));
    }
  }
  release_free_heap();  // the DiT and the sampling are gone (the velocity function held the DiT until here)
  const int frames_out = static_cast<int>((latent.size(1) - 1) * plan.vae.temporal_stride() + 1);
  result.frames = frames_out;
  result.fps = plan.request.fps.value();
  result.height = static_cast<int>(latent.size(2) * plan.vae.spatial_stride());
  result.width = static_cast<int>(latent.size(3) * plan.vae.spatial_stride());
  // The video as made (a decoded latent's own size, not the request's defaults).
  settings["video"]["width"] = result.width;
  settings["video"]["height"] = result.height;
  settings["video"]["frames"] = result.frames;
  if (plan.decode_only && settings["request"].is_object()) {  // what was decoded, not what metadata claims
    settings["request"]["width"] = result.width;
    settings["request"]["height"] = result.height;
    settings["request"]["frames"] = result.frames;
  }
  if (plan.request.output.empty() && plan.request.frames_dir.empty()) {
    place_staged_latent();
    report(Phase::kDone, 1, 1, 0, "");
    return result;
  }

  try {
    Clock::time_point t0 = Clock::now();
    report(Phase::kDecoding, 0, static_cast<int>(latent.size(1)), 0, "");
    const torch::Tensor video = decode_video(
        plan, latent, [&](int done, int n) { report(Phase::kDecoding, done, n, seconds_since(t0) / done, ""); });
    result.decode_seconds = seconds_since(t0);
    release_free_heap();  // the VAE and its working set are gone: only the video is left
    t0 = Clock::now();
    report(Phase::kWriting, 0, 1, 0, "");
    const Rgb8Video rgb = to_rgb8(video);
    // Every output is written under its temporary name first and renamed into place together at the
    // end (a failure on the way leaves the user's folder as it was, earlier files included).
    // Renamed in this order: the frames folder first (a folder that appeared meanwhile makes its rename
    // fail), then the video, then the sidecar (files replace files).
    std::vector<PendingRename> finished;
    if (!plan.request.frames_dir.empty()) {
      finished.push_back(write_png_frames_staged(plan.request.frames_dir, rgb));
      result.frames_dir = plan.request.frames_dir;
    }
    if (!plan.request.output.empty()) {
      finished.push_back(encode_video_staged(plan.request.output, rgb,
                                             VideoEncodeOptions{plan.request.fps.value(), plan.request.crf}));
      result.video_path = plan.request.output;
    }
    result.write_seconds = seconds_since(t0);
    settings["timings_seconds"] = {{"text_encoding", result.text_seconds}, {"image_encoding", result.image_seconds},
                                   {"dit_loading", result.load_seconds},   {"sampling", result.sampling_seconds},
                                   {"decoding", result.decode_seconds},    {"writing", result.write_seconds},
                                   {"total", seconds_since(t_start)}};
    // What the sampling ran (this rank's): the DiT forwards and, with --cache, the steps whose blocks the
    // cache supplied (1-based).
    if (!plan.decode_only)  // a decode records no sampling of its own
      settings["sampling"] = {{"counted_on", "rank 0 (with CFG parallel each rank runs one of the two passes)"},
                              {"dit_forwards", result.dit_forwards},
                              {"dit_forwards_cached", result.dit_forwards_cached},
                              {"cached_steps", result.cached_steps}};
    settings["peak_memory_bytes"] = {{"cpu_rss", peak_rss_bytes()}};
    settings["engine"] = {{"name", "wan-studio"}, {"version", kWanVersion}, {"torch", kWanTorchVersion}};
    settings["created"] = now_iso8601();
    settings["outputs"] = {
        {"video",
         result.video_path.empty() ? nlohmann::json() : nlohmann::json(fs::absolute(result.video_path).string())},
        {"frames_dir",
         result.frames_dir.empty() ? nlohmann::json() : nlohmann::json(fs::absolute(result.frames_dir).string())},
        {"latent", result.latent_path.empty() && staged_latent.empty()
                       ? nlohmann::json()
                       : nlohmann::json(fs::absolute(plan.request.save_latent).string())}};
    result.sidecar_path = sidecar_path_for(plan.request);
    const std::string text = settings.dump(2) + "\n";
    AtomicFileWriter sidecar(result.sidecar_path);
    sidecar.write(text.data(), text.size());
    finished.push_back(sidecar.finish());
    for (PendingRename& output : finished) output.commit();  // renames within the output folders
    place_staged_latent();
    if (!rescue_copy.empty()) {
      fs::remove(rescue_copy);
      note_kept_latent("");
    }
  } catch (const std::exception& failure) {
    // Never lose the sampling: keep the latent and say how to decode it. The outputs not renamed into
    // place yet were removed with their temporary names.
    const Error e = engine_error(failure, run, job.config);
    if (plan.decode_only) throw e;
    std::string kept = !result.latent_path.empty() ? result.latent_path
                       : !staged_latent.empty()    ? staged_latent
                                                   : rescue_copy;
    if (kept.empty()) kept = keep(rescue_latent_path(plan.request));
    throw Error(e.code(), std::string(e.what()) + " (the sampled latent is kept in " + kept + ": finish with `" +
                              resume_command(kept, plan.request) + "`)");
  }
  report(Phase::kDone, 1, 1, 0, "");
  return result;
}

}  // namespace

GenerationResult generate_with_hooks(const Job& job, const ProgressFn& progress, const RankHooks& hooks) {
  RunState run;
  try {
    return run_generation(job, progress, hooks, run);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw engine_error(e, run, job.config);
  }
}

}  // namespace wan
