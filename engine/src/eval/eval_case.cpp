#include "wan/eval_case.h"

#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "core/runtime.h"
#include "model/model_files.h"
#include "pipeline/text_to_video.h"
#include "sampling/sampler.h"
#include "wan/error.h"
#include "weights/file_util.h"
#include "weights/loader.h"
#include "weights/safetensors.h"

namespace wan {
namespace fs = std::filesystem;

namespace {

using Outputs = std::vector<std::pair<std::string, torch::Tensor>>;

// The one weight file of a module case (anything but io.safetensors).
std::string find_weights(const fs::path& dir) {
  std::vector<std::string> found;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name == "io.safetensors") continue;
    const std::string ext = entry.path().extension().string();
    if (ext == ".safetensors" || ext == ".pth") found.push_back(entry.path().string());
  }
  if (found.size() != 1)
    throw Error(ErrorCode::kInvalidArgument, dir.string() +
                                                 ": expected exactly one weight file beside io.safetensors, found " +
                                                 std::to_string(found.size()));
  return found[0];
}

torch::Tensor input(const SafetensorsFile& io, const std::string& name) {
  if (!io.contains(name)) throw Error(ErrorCode::kInvalidArgument, io.path() + ": input '" + name + "' is missing");
  return io.view(name).clone();
}

Outputs eval_dit(const fs::path& dir, const SafetensorsFile& io, const ModelPlacement& placement) {
  LoadedDit dit = load_dit(open_weights(find_weights(dir)), read_text_file((dir / "config.json").string()), placement);
  const torch::Tensor x = input(io, "x");
  const torch::Tensor y = io.contains("y") ? input(io, "y") : torch::Tensor();
  const torch::Tensor clip = io.contains("clip_fea") ? input(io, "clip_fea") : torch::Tensor();
  Outputs out;
  for (int i = 0; io.contains("context_" + std::to_string(i)); ++i) {
    const std::string s = std::to_string(i);
    TokenTimesteps t(input(io, "t_" + s).to(torch::kFloat64).item<double>());
    if (io.contains("t_tokens_" + s)) {  // Wan2.2 TI2V: one timestep per token (padding entries past the tokens)
      const torch::Tensor per_token = input(io, "t_tokens_" + s).to(torch::kFloat64).contiguous();
      t = TokenTimesteps::per_token(
          std::vector<double>(per_token.data_ptr<double>(), per_token.data_ptr<double>() + per_token.numel()));
    }
    // Per-call inputs where the case lists them (y_i, clip_fea_i), else the case's one y / clip_fea.
    const torch::Tensor y_i = io.contains("y_" + s) ? input(io, "y_" + s) : y;
    const torch::Tensor clip_i = io.contains("clip_fea_" + s) ? input(io, "clip_fea_" + s) : clip;
    out.emplace_back("out_" + s, dit.model->forward(x, t, input(io, "context_" + s), clip_i, y_i).cpu());
  }
  return out;
}

Outputs eval_t5(const fs::path& dir, const SafetensorsFile& io, const ModelPlacement& placement) {
  LoadedT5 t5 = load_t5(open_weights(find_weights(dir)), placement);
  Outputs out;
  for (int i = 0; io.contains("ids_" + std::to_string(i)); ++i) {
    const std::string s = std::to_string(i);
    torch::Tensor ids = input(io, "ids_" + s).to(torch::kInt64);
    std::int64_t valid = ids.size(0);
    if (io.contains("mask_" + s)) valid = input(io, "mask_" + s).sum().item<std::int64_t>();
    out.emplace_back("out_" + s, t5.model->forward(ids.narrow(0, 0, valid)).cpu());
  }
  return out;
}

Outputs eval_vae(const fs::path& dir, const SafetensorsFile& io, const ModelPlacement& placement) {
  LoadedVae vae = load_vae(open_weights(find_weights(dir)), placement);
  Outputs out;
  if (io.contains("video")) out.emplace_back("latent", vae.encode(input(io, "video")).cpu());
  if (io.contains("z")) out.emplace_back("decoded", vae.decode(input(io, "z")).cpu());
  return out;
}

Outputs eval_clip(const fs::path& dir, const nlohmann::json& config, const SafetensorsFile& io,
                  const ModelPlacement& placement) {
  LoadedClip clip = load_clip(open_weights(find_weights(dir)), placement, config.value("num_heads", std::int64_t(0)));
  return {{"clip_fea", clip.model->encode(input(io, "image")).cpu()}};
}

// Sampler case: from x_init, step i with model_output_i gives x_i.
Outputs eval_sampler(const nlohmann::json& config, const SafetensorsFile& io) {
  const int steps = config.at("steps").get<int>();
  auto sampler =
      make_sampler(parse_sampler(config.at("solver").get<std::string>()), steps, config.at("shift").get<double>());
  Outputs out;
  std::vector<float> t(sampler->schedule().timesteps.begin(), sampler->schedule().timesteps.end());
  out.emplace_back("timesteps", torch::tensor(t));
  torch::Tensor x = input(io, "x_init");
  for (int i = 0; i < steps; ++i) {
    x = sampler->step(input(io, "model_output_" + std::to_string(i)), x);
    out.emplace_back("x_" + std::to_string(i), x);
  }
  return out;
}

// Whole-pipeline case: the folder is a model folder and run.json holds the settings.
// One run of a whole-pipeline case: its request's outputs under the case's names.
Outputs eval_pipeline_run(const GenerationRequest& r) {
  const RunPlan plan = make_plan(r, DistConfig{}, /*require_output=*/false);
  Outputs out;
  const TextContexts text = encode_prompts(plan);
  out.emplace_back("ids_prompt", torch::tensor(text.ids_prompt, torch::kInt64));
  out.emplace_back("ids_negative", torch::tensor(text.ids_negative, torch::kInt64));
  out.emplace_back("context", text.context.cpu());
  out.emplace_back("context_null", text.context_null.cpu());
  const ImageContext image = encode_image(plan);
  if (image.defined()) {
    out.emplace_back("image", plan.image);
    if (image.clip_fea.defined()) out.emplace_back("clip_fea", image.clip_fea.cpu());
    if (image.y.defined()) out.emplace_back("y", image.y.cpu());
    if (image.first_frame.defined()) out.emplace_back("image_latent", image.first_frame.cpu());
  }
  const torch::Tensor noise = initial_noise(plan);
  out.emplace_back("noise", noise.cpu());
  if (image.first_frame.defined()) {  // TI2V: the noise with latent frame 0 replaced by the picture's
    torch::Tensor init = noise.clone();
    init.narrow(1, 0, 1).copy_(image.first_frame);
    out.emplace_back("latent_init", init.cpu());
  }
  const SigmaSchedule schedule = make_schedule(plan.sampler, plan.request.steps.value(), plan.request.shift.value(),
                                               plan.request.denoising_step_list);
  out.emplace_back("timesteps",
                   torch::tensor(std::vector<float>(schedule.timesteps.begin(), schedule.timesteps.end())));
  if (plan.dit.kind == DitKind::kTI2V) {
    // The timestep each token gets at each step, [steps, seq_len] (textimage2video.py:373-378, 573-578).
    std::vector<torch::Tensor> rows;
    for (double t : schedule.timesteps) {
      const TokenTimesteps tt = step_timesteps(plan, image, noise, t);
      std::vector<float> row;
      for (std::size_t i = 0; i < tt.runs.size(); ++i) {
        const std::int64_t n = i + 1 < tt.runs.size() ? tt.runs[i].count : plan.seq_len - std::int64_t(row.size());
        row.insert(row.end(), static_cast<std::size_t>(n), static_cast<float>(tt.runs[i].t));
      }
      rows.push_back(torch::tensor(row));
    }
    out.emplace_back("t_tokens", torch::stack(rows));
  }
  WanModel dit = load_plan_dit(plan);
  WanModel high_noise{nullptr};  // Wan2.2 A14B: the expert per step and its guidance scale, as the case records
  HighNoiseExpert high;
  if (plan.moe) {
    high_noise = load_plan_dit(plan, {}, /*high_noise=*/true);
    high.model = &high_noise;
    std::vector<std::int64_t> expert;
    std::vector<float> guide;
    for (double t : schedule.timesteps) {
      const bool h = runs_high_noise_expert(plan, t);
      expert.push_back(h ? 1 : 0);
      guide.push_back(static_cast<float>(h ? *plan.request.guidance_high : *plan.request.guidance));
    }
    out.emplace_back("expert", torch::tensor(expert, torch::kInt64));
    out.emplace_back("guide_scale", torch::tensor(guide));
  }
  const torch::Tensor latent = denoise(
      plan, dit, text, noise,
      [&](int step, int, const torch::Tensor& x) { out.emplace_back("latent_" + std::to_string(step - 1), x.cpu()); },
      {}, image, high);
  out.emplace_back("final_latent", latent.cpu());
  out.emplace_back("video", decode_video(plan, latent));
  return out;
}

// Whole-pipeline case: the folder is a model folder and run.json holds the settings. A case with
// "t2v" and "i2v" settings (TI2V-5B: one model, both modes) runs each, its outputs prefixed "t2v_" /
// "i2v_" but for the text encoder's, which both share.
Outputs eval_pipeline(const fs::path& dir, const EvalCaseOptions& options) {
  const nlohmann::json run = nlohmann::json::parse(read_text_file((dir / "run.json").string()));
  if (!(run.contains("t2v") && run["t2v"].is_object()))
    return eval_pipeline_run(pipeline_case_request(dir.string(), options.dtype, options.device));
  Outputs out;
  for (const char* mode : {"t2v", "i2v"}) {
    if (!run.contains(mode)) continue;
    for (auto& [name, t] :
         eval_pipeline_run(pipeline_case_request(dir.string(), options.dtype, options.device, mode))) {
      const bool shared = name.rfind("ids_", 0) == 0 || name.rfind("context", 0) == 0;
      if (shared && std::string(mode) != "t2v") continue;
      out.emplace_back(shared ? name : std::string(mode) + "_" + name, t);
    }
  }
  return out;
}

double relative_l2(const torch::Tensor& out, const torch::Tensor& ref) {
  const torch::Tensor o = out.to(torch::kFloat64), r = ref.to(torch::kFloat64);
  if (o.sizes() != r.sizes()) return std::numeric_limits<double>::infinity();
  const double denom = r.norm().item<double>();
  const double num = (o - r).norm().item<double>();
  return denom > 0 ? num / denom : num;
}

}  // namespace

EvalCaseResult run_eval_case(const std::string& case_dir, const std::string& out_path, const EvalCaseOptions& options) {
  const fs::path dir(case_dir);
  if (!fs::is_directory(dir)) throw Error(ErrorCode::kFileNotFound, case_dir + ": not a folder");
  nlohmann::json config;
  try {
    const fs::path config_file = fs::exists(dir / "run.json") ? dir / "run.json" : dir / "config.json";
    config = nlohmann::json::parse(read_text_file(config_file.string()));
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(ErrorCode::kCorruptFile, (dir / "config.json").string() + ": not valid JSON (" + e.what() + ")");
  }
  auto io = SafetensorsFile::open((dir / "io.safetensors").string());
  const torch::ScalarType dtype = parse_dtype(options.dtype);
  const torch::Device device = parse_device(options.device);
  const ModelPlacement placement = ModelPlacement::make(dtype, device);
  const ModelPlacement vae_placement = ModelPlacement::make(dtype, device, /*fp32_compute_on_cpu=*/true);

  EvalCaseResult result;
  result.kind = config.contains("prompt")   ? "pipeline"
                : config.contains("solver") ? "sampler"
                                            : config.value("_class_name", std::string());
  Outputs outputs;
  if (result.kind == "pipeline")
    outputs = eval_pipeline(dir, options);
  else if (result.kind == "sampler")
    outputs = eval_sampler(config, *io);
  else if (result.kind == "WanModel")
    outputs = eval_dit(dir, *io, placement);
  else if (result.kind == "T5Encoder")
    outputs = eval_t5(dir, *io, placement);
  else if (result.kind == "WanVAE")
    outputs = eval_vae(dir, *io, vae_placement);
  else if (result.kind == "CLIPVisionTransformer")
    outputs = eval_clip(dir, config, *io, placement);
  else
    throw Error(ErrorCode::kUnsupported, (dir / "config.json").string() + ": case kind '" + result.kind +
                                             "' is not supported by this version of eval-case");
  for (const auto& [name, t] : outputs)
    if (io->contains(name)) result.relative_errors.emplace_back(name, relative_l2(t, io->view(name)));
  write_safetensors(out_path, outputs, {{"case", dir.filename().string()}, {"dtype", options.dtype}});
  return result;
}

GenerationRequest pipeline_case_request(const std::string& case_dir, const std::string& dtype,
                                        const std::string& device, const std::string& mode) {
  const fs::path dir(case_dir);
  nlohmann::json run = nlohmann::json::parse(read_text_file((dir / "run.json").string()));
  if (!mode.empty()) {  // the mode's settings over the shared ones
    if (!run.contains(mode) || !run[mode].is_object())
      throw Error(ErrorCode::kInvalidArgument, (dir / "run.json").string() + " has no \"" + mode + "\" settings");
    const nlohmann::json settings = run[mode];
    for (const auto& [key, value] : settings.items()) run[key] = value;
    run["task"] = mode;
  }
  GenerationRequest r;
  r.model.model_dir = dir.string();
  r.prompt = run.at("prompt").get<std::string>();
  r.negative_prompt = run.value("negative_prompt", std::string());
  const std::string task = run.value("task", std::string("t2v"));
  if (task == "i2v" || task == "i2v-A14B") {
    // Image-to-video: the picture beside run.json, the output size from max_area: [width, height]
    // (Wan2.1 cases) or a pixel count (Wan2.2).
    r.image = (dir / run.value("image", std::string("input.png"))).string();
    const nlohmann::json& area = run.at("max_area");
    if (area.is_array()) {
      r.width = area.at(0).get<int>();
      r.height = area.at(1).get<int>();
    } else {
      // A pixel count: as width x height, the most square factor pair (the request holds an area as two sides).
      const std::int64_t pixels = area.get<std::int64_t>();
      std::int64_t w = static_cast<std::int64_t>(std::sqrt(static_cast<double>(pixels)));
      while (w > 1 && pixels % w != 0) --w;
      if (w < 1 || pixels / w > kMaxSide)
        throw Error(ErrorCode::kUnsupported,
                    (dir / "run.json").string() + ": max_area " + std::to_string(pixels) + " is no WIDTH*HEIGHT");
      r.width = static_cast<int>(pixels / w);
      r.height = static_cast<int>(w);
    }
  } else {
    r.width = run.at("width").get<int>();
    r.height = run.at("height").get<int>();
  }
  r.frames = run.at("frames").get<int>();
  r.steps = run.at("steps").get<int>();
  r.shift = run.at("shift").get<double>();
  if (run.contains("sample_guide_scale") && run["sample_guide_scale"].is_array()) {
    // Wan2.2 A14B: (low-noise expert, high-noise expert), and the boundary.
    r.guidance = run["sample_guide_scale"].at(0).get<double>();
    r.guidance_high = run["sample_guide_scale"].at(1).get<double>();
  } else {
    r.guidance = run.at(run.contains("guide_scale") ? "guide_scale" : "sample_guide_scale").get<double>();
  }
  if (run.contains("boundary")) r.boundary = run.at("boundary").get<double>();
  r.seed = run.at("seed").get<std::int64_t>();
  r.sampler = parse_sampler(run.value("solver", std::string("unipc")));
  r.dtype = parse_dtype_name(dtype);
  r.device = parse_device_name(device);
  r.cpu_noise = true;  // the fixtures' noise comes from the CPU generator (golden/README.md), on any device
  return r;
}

}  // namespace wan
