#include "generate_command.h"

#include <cstdio>

#include "pipeline/demo_model.h"
#include "progress_printer.h"
#include "wan/error.h"

namespace wan_cli {

CLI::App* add_generate_command(CLI::App& app, GenerateOptions& o) {
  wan::GenerationRequest& r = o.request;
  CLI::App* cmd = app.add_subcommand("generate", "Generate a video from a text prompt (text-to-video), or from a picture "
                                                 "and a prompt (image-to-video, with an I2V model and --image)");
  cmd->group("Generation");
  // A flag given twice takes its last value (scripts append overrides).
  cmd->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  cmd->add_option("--model", r.model.model_dir,
                  "official Wan2.1 folder, or ComfyUI models folder (diffusion_models/, text_encoders/, vae/); "
                  "default: the built-in demo model");
  cmd->add_option("--dit", r.model.dit, "DiT file (or its name inside diffusion_models/)");
  cmd->add_option("--t5", r.model.t5, "umT5 text encoder file (or its name inside text_encoders/)");
  cmd->add_option("--vae", r.model.vae, "VAE file (or its name inside vae/)");
  cmd->add_option("--tokenizer", r.model.tokenizer, "umT5 spiece.model, or a folder holding it");
  cmd->add_option("--clip", r.model.clip, "CLIP vision file for image-to-video (or its name inside clip_vision/)");
  cmd->add_option("--image", r.image, "start picture (PNG, JPEG, ...) for image-to-video; needs an I2V model. "
                                      "WIDTH*HEIGHT is then the largest area: the video keeps the picture's aspect");
  cmd->add_option("--prompt", r.prompt, "what the video shows");
  cmd->add_option("--negative", r.negative_prompt, "negative prompt (default: Wan2.1's built-in one)");
  cmd->add_option("--width", r.width, "width in pixels, a multiple of 16")->capture_default_str();
  cmd->add_option("--height", r.height, "height in pixels, a multiple of 16")->capture_default_str();
  cmd->add_option("--size", o.size, "WIDTH*HEIGHT (as generate.py), e.g. 832*480; overrides --width/--height");
  cmd->add_option("--frames", r.frames, "number of frames, 4n+1")->capture_default_str();
  o.steps_option = cmd->add_option("--steps", r.steps, "sampling steps (image-to-video: 40 unless given)")->capture_default_str();
  o.shift_option = cmd->add_option("--shift", r.shift, "flow-matching sigma shift (image-to-video at 832*480 or 480*832: 3 unless given)")
                       ->capture_default_str();
  cmd->add_option("--guidance", r.guidance, "classifier-free guidance scale")->capture_default_str();
  cmd->add_option("--seed", r.seed, "random seed; -1 picks one (recorded in the sidecar)")->capture_default_str();
  cmd->add_option("--sampler", r.sampler, "unipc | dpm++")->capture_default_str();
  cmd->add_option("--dtype", r.dtype, "DiT/T5 weights: fp32 | bf16 | fp16 | auto (bf16 on GPU, fp32 on CPU)")->capture_default_str();
  cmd->add_option("--device", r.device, "cpu | cuda | cuda:N")->capture_default_str();
  cmd->add_flag("--t5-cpu", r.t5_cpu, "run the text encoder on the CPU (saves GPU memory)");
  cmd->add_flag("--cpu-noise", r.cpu_noise,
                "draw the initial noise on the CPU (as ComfyUI): the same seed gives the same video on any device; "
                "default: the device's generator, as generate.py");
  cmd->add_option("--output,-o", r.output, "video file (.mp4, .mkv, .mov); a JSON sidecar is written beside it");
  cmd->add_option("--frames-dir", r.frames_dir, "also write PNG frames into this new folder");
  cmd->add_option("--save-latent", r.save_latent, "write the final latent (.safetensors) before decoding");
  cmd->add_option("--decode-latent", r.decode_latent, "skip sampling: decode a latent saved with --save-latent");
  cmd->add_option("--fps", r.fps, "frames per second of the video")->capture_default_str();
  cmd->add_option("--crf", r.crf, "H.264 quality: 0 (lossless) .. 51 (worst)")->capture_default_str();
  return cmd;
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

void prepare_generate_request(GenerateOptions& o) {
  if (!o.size.empty()) parse_size(o.size, o.request.width, o.request.height);
  if (!o.request.image.empty()) {  // generate.py's i2v defaults (sample_steps 40; sample_shift 3 at 480p)
    wan::GenerationRequest& r = o.request;
    if (o.steps_option && o.steps_option->count() == 0) r.steps = 40;
    const bool p480 = (r.width == 832 && r.height == 480) || (r.width == 480 && r.height == 832);
    if (o.shift_option && o.shift_option->count() == 0 && p480) r.shift = 3.0;
  }
  wan::ModelFiles& m = o.request.model;
  if (m.model_dir.empty() && m.dit.empty() && m.t5.empty() && m.vae.empty()) {
    bool created = false;
    const bool i2v = !o.request.image.empty();
    m.model_dir = wan::ensure_demo_model(&created, i2v);
    std::fprintf(stderr, "note: no --model given: using the built-in %sdemo model (random weights, noise-like videos)%s at %s\n",
                 i2v ? "image-to-video " : "", created ? ", just created," : "", m.model_dir.c_str());
  }
}

void print_generation_result(const wan::GenerationResult& r, const wan::GenerationRequest& request) {
  if (!r.video_path.empty())
    std::printf("wrote %s (%d frames, %dx%d, %d fps, seed %lld)\n", r.video_path.c_str(), r.frames, r.width, r.height,
                request.fps, static_cast<long long>(r.seed));
  if (!r.frames_dir.empty()) std::printf("wrote %d PNG frames into %s\n", r.frames, r.frames_dir.c_str());
  if (!r.latent_path.empty()) std::printf("wrote latent %s (seed %lld)\n", r.latent_path.c_str(), static_cast<long long>(r.seed));
  if (!r.sidecar_path.empty()) std::printf("settings in %s\n", r.sidecar_path.c_str());
  std::printf("time: text %.1f s, ", r.text_seconds);
  if (!request.image.empty()) std::printf("image %.1f s, ", r.image_seconds);
  std::printf("DiT load %.1f s, sampling %.1f s, decode %.1f s, write %.1f s\n", r.load_seconds, r.sampling_seconds,
              r.decode_seconds, r.write_seconds);
}

int run_generate_command(GenerateOptions& o) {
  prepare_generate_request(o);
  ProgressPrinter printer(stderr);
  wan::GenerationResult r;
  try {
    r = wan::generate(o.request, [&](const wan::ProgressEvent& e) { printer(e); });
  } catch (...) {
    printer.finish();
    throw;
  }
  printer.finish();
  print_generation_result(r, o.request);
  return 0;
}

}  // namespace wan_cli
