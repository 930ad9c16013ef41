#include "job_flags.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "wan/error.h"
#include "wan/progress_board.h"

namespace wan_cli {

CLI::App* add_generate_command(CLI::App& app, JobFlags& f, bool with_dist) {
  wan::GenerationRequest& r = f.request;
  CLI::App* cmd = app.add_subcommand("generate",
                                     "Generate a video from a text prompt (text-to-video), or from a picture "
                                     "and a prompt (image-to-video, with an I2V model and --image)");
  cmd->group("Generation");
  // A flag given twice takes its last value (scripts append overrides).
  cmd->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  cmd->add_option("--model", r.model.model_dir,
                  "official Wan2.1 folder, or ComfyUI models folder (diffusion_models/, text_encoders/, vae/); "
                  "default: the built-in demo model");
  cmd->add_option("--dit", r.model.dit,
                  "DiT file (or its name inside diffusion_models/); with --dit-high, Wan2.2 A14B's low-noise expert");
  cmd->add_option("--dit-high", r.model.dit_high,
                  "Wan2.2 A14B from two files: the high-noise expert (ComfyUI's *_high_noise_*), with --dit the "
                  "low-noise one");
  cmd->add_option("--t5", r.model.t5, "umT5 text encoder file (or its name inside text_encoders/)");
  cmd->add_option("--vae", r.model.vae, "VAE file (or its name inside vae/)");
  cmd->add_option("--tokenizer", r.model.tokenizer, "umT5 spiece.model, or a folder holding it");
  cmd->add_option("--clip", r.model.clip, "CLIP vision file for image-to-video (or its name inside clip_vision/)");
  cmd->add_option("--lora", f.loras,
                  "LoRA for the DiT, FILE or FILE:STRENGTH (default strength 1; a name inside loras/ of a "
                  "ComfyUI folder); repeat for several, merged in order")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--lora-high", f.loras_high,
                  "Wan2.2 A14B: LoRA for the high-noise expert only, FILE[:STRENGTH] (ComfyUI's *_high_noise_* "
                  "LoRAs); --lora goes to both experts")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--lora-low", f.loras_low,
                  "Wan2.2 A14B: LoRA for the low-noise expert only, FILE[:STRENGTH] (*_low_noise_* LoRAs)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_flag("--lora-allow-partial", r.model.lora_allow_partial,
                "apply a LoRA some of whose entries match no DiT weight (without it such a LoRA is refused)");
  cmd->add_option("--image", r.image,
                  "start picture (PNG, JPEG, ...) for image-to-video; needs an I2V model. "
                  "WIDTH*HEIGHT is then the largest area: the video keeps the picture's aspect");
  cmd->add_option("--prompt", r.prompt, "what the video shows");
  cmd->add_option("--negative", r.negative_prompt, "negative prompt (default: Wan2.1's built-in one)");
  cmd->add_option("--width", r.width, "width in pixels, a multiple of 16")->capture_default_str();
  cmd->add_option("--height", r.height, "height in pixels, a multiple of 16")->capture_default_str();
  cmd->add_option("--size", f.size, "WIDTH*HEIGHT (as generate.py), e.g. 832*480; overrides --width/--height");
  cmd->add_option("--frames", r.frames, "number of frames, 4n+1")->capture_default_str();
  f.steps_option = cmd->add_option("--steps", f.steps, "sampling steps (default: the task's, 50; image-to-video 40)");
  f.shift_option = cmd->add_option("--shift", f.shift,
                                   "flow-matching sigma shift (default: the task's, 5; image-to-video at "
                                   "832*480 or 480*832: 3)");
  f.guidance_option =
      cmd->add_option("--guidance", f.guidance,
                      "classifier-free guidance scale (default: the task's, 5); for Wan2.2 A14B G for both experts, "
                      "or LOW,HIGH (the low-noise expert's first, as the official sample_guide_scale)");
  cmd->add_option("--boundary", f.request.boundary,
                  "Wan2.2 A14B: the high-noise expert runs while the timestep is at least B x 1000 (default: 0.875 "
                  "text-to-video, 0.9 image-to-video)");
  // As text: CLI11 would clamp a number past int64 to its maximum without a word.
  cmd->add_option("--seed", f.seed, "random seed, 0 to 9223372036854775807; -1 picks one (recorded in the sidecar)")
      ->default_str("-1");
  cmd->add_option("--sampler", f.sampler,
                  "unipc | dpm++ | distill (step-distilled models and LoRAs, e.g. LightX2V's 4-step: default 4 "
                  "steps 1000,750,500,250, shift 5, guidance 1)")
      ->capture_default_str();
  cmd->add_option("--cache", f.cache,
                  "step caching: teacache:THRESHOLD[:WARMUP] (Wan2.1; e.g. teacache:0.2) or "
                  "magcache:THRESHOLD[:WARMUP[:K]] (e.g. magcache:0.12): steps whose input barely changed reuse the "
                  "blocks' cached residual; WARMUP steps at the start are never skipped; none (default)");
  cmd->add_option("--denoising-step-list", f.denoising_step_list,
                  "--sampler distill: the timesteps of the 1000-step schedule it samples at, going down, e.g. "
                  "1000,750,500,250 (the published 4-step models'; their count is the step count)");
  cmd->add_option("--dtype", f.dtype, "DiT/T5 weights: fp32 | bf16 | fp16 | auto (bf16 on GPU, fp32 on CPU)")
      ->capture_default_str();
  cmd->add_option("--fp8-weights", f.fp8_weights,
                  "DiT/T5 weights stored in float8 (fp8, fp8_scaled files): dequantize (to --dtype at load) | "
                  "keep (float8 in memory, half the weight memory; each layer dequantized as it runs)")
      ->capture_default_str();
  cmd->add_option("--device", f.device, "cpu | cuda | cuda:N")->capture_default_str();
  cmd->add_flag("--t5-cpu", f.t5_cpu, "run the text encoder on the CPU (saves GPU memory; the config's t5_cpu)");
  cmd->add_flag("--idle-expert-on-host", f.idle_expert_on_host,
                "Wan2.2 A14B on a GPU: keep the expert that is not running in pinned host memory (one expert's "
                "weights on the GPU; the config's idle_expert_on_host)");
  cmd->add_flag("--cpu-noise", r.cpu_noise,
                "draw the initial noise on the CPU (as ComfyUI): the same seed gives the same video on any device; "
                "default: the device's generator, as generate.py");
  cmd->add_option("--output,-o", r.output, "video file (.mp4, .mkv, .mov); a JSON sidecar is written beside it");
  cmd->add_option("--frames-dir", r.frames_dir, "also write PNG frames into this new folder");
  cmd->add_option("--save-latent", r.save_latent, "write the final latent (.safetensors) before decoding");
  cmd->add_option("--decode-latent", r.decode_latent, "skip sampling: decode a latent saved with --save-latent");
  f.fps_option =
      cmd->add_option("--fps", f.fps, "frames per second of the video (default: the model's, 16; TI2V-5B 24)");
  cmd->add_option("--crf", r.crf, "H.264 quality: 0 (lossless) .. 51 (worst)")->capture_default_str();
  cmd->add_flag("--overwrite", r.overwrite,
                "replace an existing video, its sidecar and the --save-latent file (without it the run refuses "
                "to start when one exists)");
  cmd->add_flag("--force", r.force,
                "start even when the memory estimate says the run cannot fit in the free memory (without it "
                "such a run is refused before loading, with what would help)");
  // An environment variable, so the workers a launch starts inherit it (core/out_of_memory.h).
  cmd->add_flag_callback(
      "--verbose", [] { setenv("WAN_VERBOSE", "1", 1); },
      "on failure, also print LibTorch's C++ stack trace (for bug reports)");
  if (!with_dist) return cmd;
  add_distributed_options(cmd, f.dist);
  cmd->add_option("--write-job", f.write_job,
                  "write the run as a job file and stop: run it on a cluster with "
                  "`torchrun ... wan-worker --job FILE` (its world_size ranks)")
      ->group("Distributed (one wan-worker process per rank)");
  return cmd;
}

void add_distributed_options(CLI::App* cmd, DistFlags& d) {
  const char* group = "Distributed (one wan-worker process per rank)";
  auto number = [&](const char* name, std::optional<int>& out, const char* help) {
    cmd->add_option_function<int>(
           name, [&out](const int& v) { out = v; }, help)
        ->group(group);
  };
  number("--world-size", d.world_size, "number of ranks (processes) on this machine");
  cmd->add_option("--dist-config", d.config_files,
                  "distributed config JSON (resources/presets/*.json); give several to apply each over the one "
                  "before (e.g. 2-gpu.json, then memory-efficient.json); the flags override them")
      ->group(group)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  number("--ulysses", d.ulysses, "Ulysses (head) parallel size; enables context parallel");
  number("--ring", d.ring, "ring attention size; enables context parallel");
  cmd->add_flag("--cfg-parallel", d.cfg_parallel, "cond and uncond on two halves of the world")->group(group);
  cmd->add_flag("--dit-fsdp", d.dit_fsdp, "shard the DiT's weights across the ranks (one unit per block, as FSDP)")
      ->group(group);
  cmd->add_flag("--t5-fsdp", d.t5_fsdp, "shard umT5's weights across the ranks (one unit per block, as FSDP)")
      ->group(group);
  cmd->add_option("--sharding", d.sharding, "FULL_SHARD | SHARD_GRAD_OP | NO_SHARD")->group(group);
  cmd->add_option("--backend", d.backend, "gloo (CPU) | nccl (GPU); CPU ranks always use gloo")->group(group);
  number("--master-port", d.master_port, "rendezvous port, 1 to 65535 (default: a free one)");
  cmd->add_option("--run-id", d.run_id, "name of the run's progress board (default: generated)")->group(group);
  number("--hang-timeout", d.hang_timeout,
         "seconds without progress before a rank counts as hung (the config's hang_timeout_seconds, default 300)");
}

void parse_size(const std::string& size, int& width, int& height) {
  const std::size_t sep = size.find_first_of("*x");
  try {
    if (sep == std::string::npos) throw std::invalid_argument("no separator");
    std::size_t end_w = 0, end_h = 0;
    const int w = std::stoi(size.substr(0, sep), &end_w);
    const int h = std::stoi(size.substr(sep + 1), &end_h);
    if (end_w != sep || end_h != size.size() - sep - 1) throw std::invalid_argument("trailing text");
    width = w;
    height = h;
  } catch (const std::exception&) {
    throw wan::Error(wan::ErrorCode::kInvalidArgument, "--size " + size + ": expected WIDTH*HEIGHT, e.g. 832*480");
  }
}

wan::LoraFile parse_lora(const std::string& given, wan::LoraExpert expert) {
  wan::LoraFile lora;
  lora.path = given;
  lora.expert = expert;
  const std::string flag = expert == wan::LoraExpert::kHighNoise  ? "--lora-high "
                           : expert == wan::LoraExpert::kLowNoise ? "--lora-low "
                                                                  : "--lora ";
  // FILE:STRENGTH when what follows the last colon is a number; otherwise the colon is the file's.
  const std::size_t colon = given.rfind(':');
  if (colon != std::string::npos && colon > 0) {
    const std::string number = given.substr(colon + 1);
    // A plain decimal number only (strtod alone would also take " 1", "0x1" and "inf").
    const bool decimal = !number.empty() && number.find_first_not_of("0123456789.eE+-") == std::string::npos;
    char* end = nullptr;
    const double strength = decimal ? std::strtod(number.c_str(), &end) : 0.0;
    if (decimal && end == number.c_str() + number.size()) {
      if (!std::isfinite(strength) || std::fabs(strength) > 100)
        throw wan::Error(wan::ErrorCode::kInvalidArgument,
                         flag + given + ": the strength must be a number from -100 to 100");
      lora.path = given.substr(0, colon);
      lora.strength = strength;
    }
  }
  if (lora.path.empty()) throw wan::Error(wan::ErrorCode::kInvalidArgument, flag + given + ": no file named");
  // FILE:TEXT where FILE exists and TEXT is no number: a mistyped strength, not a file name with a colon.
  if (lora.path == given && colon != std::string::npos && colon > 0 && !std::filesystem::exists(given) &&
      std::filesystem::exists(given.substr(0, colon)))
    throw wan::Error(wan::ErrorCode::kInvalidArgument,
                     flag + given + ": the strength '" + given.substr(colon + 1) +
                         "' is not a number (FILE:STRENGTH, e.g. style.safetensors:0.8)");
  return lora;
}

wan::Job job_from_flags(const JobFlags& f, const wan::DistConfig& base) {
  wan::Job job;
  wan::GenerationRequest& r = job.request;
  r = f.request;
  if (!f.size.empty()) parse_size(f.size, r.width, r.height);
  if (!f.seed.empty()) {
    std::int64_t seed = 0;
    const char* end = f.seed.data() + f.seed.size();
    const auto [ptr, ec] = std::from_chars(f.seed.data(), end, seed);
    if (ec != std::errc() || ptr != end || seed < -1)
      throw wan::Error(
          wan::ErrorCode::kInvalidArgument,
          "--seed " + f.seed + ": give a whole number from 0 to 9223372036854775807, or -1 for a random one");
    r.seed = seed;
  }
  // --lora, then --lora-high, then --lora-low, each in the order typed: an expert merges the LoRAs that
  // reach it in this order.
  for (const std::string& given : f.loras) r.model.loras.push_back(parse_lora(given));
  for (const std::string& given : f.loras_high) r.model.loras.push_back(parse_lora(given, wan::LoraExpert::kHighNoise));
  for (const std::string& given : f.loras_low) r.model.loras.push_back(parse_lora(given, wan::LoraExpert::kLowNoise));
  r.sampler = wan::parse_sampler(f.sampler);
  if (!f.cache.empty()) r.cache = wan::parse_step_cache(f.cache);
  if (!f.denoising_step_list.empty()) {
    r.denoising_step_list.clear();
    std::size_t from = 0;
    while (from <= f.denoising_step_list.size()) {
      const std::size_t comma = std::min(f.denoising_step_list.find(',', from), f.denoising_step_list.size());
      const std::string item = f.denoising_step_list.substr(from, comma - from);
      int value = 0;
      const auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), value);
      if (item.empty() || ec != std::errc() || ptr != item.data() + item.size())
        throw wan::Error(wan::ErrorCode::kInvalidArgument,
                         "--denoising-step-list " + f.denoising_step_list + ": '" + item +
                             "' is not a whole number (give timesteps separated by commas, e.g. 1000,750,500,250)");
      r.denoising_step_list.push_back(value);
      from = comma + 1;
    }
  }
  r.dtype = wan::parse_dtype_name(f.dtype);
  r.fp8_weights = wan::parse_fp8_weights(f.fp8_weights);
  r.device = wan::parse_device_name(f.device);
  if (f.steps_option && f.steps_option->count()) r.steps = f.steps;
  if (f.fps_option && f.fps_option->count()) r.fps = f.fps;
  if (f.shift_option && f.shift_option->count()) r.shift = f.shift;
  if (f.guidance_option && f.guidance_option->count()) {
    // G, or LOW,HIGH (the official sample_guide_scale order: low-noise expert first).
    const auto number = [&](const std::string& text) {
      char* end = nullptr;
      const double v = std::strtod(text.c_str(), &end);
      if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(v))
        throw wan::Error(
            wan::ErrorCode::kInvalidArgument,
            "--guidance " + f.guidance + ": give a number, or LOW,HIGH for the two experts of Wan2.2 A14B");
      return v;
    };
    const std::size_t comma = f.guidance.find(',');
    r.guidance = number(f.guidance.substr(0, comma));
    if (comma != std::string::npos) r.guidance_high = number(f.guidance.substr(comma + 1));
  }

  job.config = dist_config_from_flags(f.dist, r.device, base);
  if (f.t5_cpu) job.config.t5_cpu = true;
  if (f.idle_expert_on_host) job.config.idle_expert_on_host = true;
  job.run_id = f.dist.run_id;
  return job;
}

wan::DistConfig dist_config_from_flags(const DistFlags& d, const wan::Device& device, const wan::DistConfig& base) {
  wan::DistConfig c = base;
  if (!d.run_id.empty()) (void)wan::ProgressBoard::segment_name(d.run_id);  // letters, digits, - and _
  for (const std::string& file : d.config_files) c = wan::load_dist_config(file, c);
  if (d.world_size) c.world_size = *d.world_size;  // every number given is checked with the config
  if (d.ulysses) c.ulysses_size = *d.ulysses;
  if (d.ring) c.ring_size = *d.ring;
  if (d.ulysses || d.ring) c.use_context_parallel = true;
  if (d.master_port && (*d.master_port < 1 || *d.master_port > 65535))
    throw wan::Error(wan::ErrorCode::kInvalidArgument,
                     "--master-port " + std::to_string(*d.master_port) + " is not a TCP port (1 to 65535)");
  if (d.cfg_parallel) c.cfg_parallel = true;
  if (d.dit_fsdp) c.dit_fsdp = true;
  if (d.t5_fsdp) c.t5_fsdp = true;
  c.use_fsdp = c.dit_fsdp || c.t5_fsdp;
  if (d.hang_timeout) c.hang_timeout_seconds = *d.hang_timeout;
  if (!d.sharding.empty()) c = wan::dist_config_from_json("{\"sharding_strategy\": \"" + d.sharding + "\"}", c);
  if (!d.backend.empty()) {
    c.backend = wan::parse_backend(d.backend);
    if (c.backend == wan::Backend::kNccl && device.is_cpu())
      throw wan::Error(wan::ErrorCode::kInvalidArgument,
                       "--backend nccl moves GPU tensors only and --device is cpu; "
                       "use --device cuda for GPU ranks, or --backend gloo on the CPU");
  }
  c.backend = wan::resolve_backend(c, device);
  return c;
}

wan::Job with_absolute_paths(wan::Job job) {
  auto absolute = [](std::string& path) {
    if (!path.empty()) path = std::filesystem::absolute(path).lexically_normal().string();
  };
  wan::GenerationRequest& r = job.request;
  for (std::string* p :
       {&r.image, &r.output, &r.frames_dir, &r.save_latent, &r.decode_latent, &r.model.model_dir, &r.model.tokenizer})
    absolute(*p);
  // With a model folder a bare name may pick a file of its ComfyUI sub-folder: it stays a name unless a
  // file of that name is here (which is what the run would find first).
  std::vector<std::string*> named = {&r.model.dit, &r.model.t5, &r.model.vae, &r.model.clip};
  for (wan::LoraFile& l : r.model.loras) named.push_back(&l.path);
  for (std::string* p : named)
    if (r.model.model_dir.empty() || p->find('/') != std::string::npos || std::filesystem::exists(*p)) absolute(*p);
  return job;
}

int parse_command_line(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
    return -1;
  } catch (const CLI::Success& e) {  // --help, --version (CallForHelp and CallForVersion derive from it)
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "wan: error: %s (see --help)\n", e.what());
    return static_cast<int>(wan::ErrorCode::kInvalidArgument);
  }
}

}  // namespace wan_cli
