#include "estimate_command.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "pipeline/plan.h"
#include "video/image_reader.h"
#include "wan/error.h"
#include "wan/estimate.h"
#include "wan/model_info.h"

namespace wan_cli {
namespace {

constexpr int kColumns[] = {1, 2, 4, 8};

nlohmann::json to_json(const wan::MemoryEstimate& e) {
  return {{"weights_bytes", e.weights},
          {"activations_bytes", e.activations},
          {"text_encoder_bytes", e.text_encoder},
          {"image_encoder_bytes", e.image_encoder},
          {"vae_decode_bytes", e.vae_decode},
          {"runtime_bytes", e.runtime},
          {"peak_bytes", e.peak},
          {"peak_phase", e.peak_phase}};
}

double gib(std::int64_t bytes) { return static_cast<double>(bytes) / (1ull << 30); }

}  // namespace

CLI::App* add_estimate_command(CLI::App& app, EstimateOptions& o) {
  CLI::App* cmd =
      app.add_subcommand("estimate", "Estimate peak memory per GPU (or CPU process) for models x 1/2/4/8 GPUs");
  cmd->add_option("--model", o.model.model_dir,
                  "also estimate this model (official or ComfyUI folder): exact sizes from its files");
  cmd->add_option("--dit", o.model.dit, "DiT file (with --t5 and --vae instead of --model)");
  cmd->add_option("--dit-high", o.model.dit_high, "Wan2.2 A14B from two files: the high-noise expert");
  cmd->add_option("--t5", o.model.t5, "umT5 text encoder file");
  cmd->add_option("--vae", o.model.vae, "VAE file");
  cmd->add_option("--clip", o.model.clip, "CLIP vision file (image-to-video models)");
  cmd->add_option("--tokenizer", o.model.tokenizer,
                  "umT5's spiece.model, for a text encoder file without an embedded tokenizer");
  cmd->add_option("--image", o.image,
                  "start picture (image-to-video): --size is then the largest area and the video "
                  "size follows the picture's aspect, as in `wan generate --image`");
  cmd->add_option("--size", o.size, "WIDTH*HEIGHT, e.g. 832*480 (default)");
  cmd->add_option("--frames", o.frames, "number of frames, 4n+1")->capture_default_str();
  cmd->add_option("--dtype", o.dtype, "fp32 | bf16 | fp16 | auto")->capture_default_str();
  cmd->add_option("--fp8-weights", o.fp8_weights,
                  "dequantize | keep: how float8 weights load (a model with float8 weights gets a row for each)")
      ->capture_default_str();
  cmd->add_option("--device", o.device, "cuda (GPU memory per rank) | cpu (resident memory per process)")
      ->capture_default_str();
  cmd->add_flag("--json", o.json, "print JSON instead of a table");
  cmd->add_option("--rank", o.rank, "estimate this rank (0 also decodes the video; others do not)")
      ->capture_default_str();
  cmd->add_option("--cache", o.cache, "step caching as `wan generate --cache` (its residuals are counted)");
  cmd->add_flag("--t5-cpu", o.t5_cpu, "the text encoder runs on the CPU (as `wan generate --t5-cpu`)");
  cmd->add_flag("--idle-expert-on-host", o.idle_expert_on_host,
                "Wan2.2 A14B: the idle expert waits in pinned host memory (as `wan generate --idle-expert-on-host`)");
  add_distributed_options(cmd, o.dist);
  return cmd;
}

int run_estimate_command(EstimateOptions& o) {
  if (!o.size.empty()) parse_size(o.size, o.width, o.height);
  // The same checks as `wan generate`, in the same words: what one refuses, the other refuses.
  wan::GenerationRequest request;
  request.prompt = "(estimate)";
  request.image = o.image;  // with a picture the size is an area: any sides, as `wan generate --image`
  if (!o.cache.empty()) request.cache = wan::parse_step_cache(o.cache);
  request.width = o.width;
  request.height = o.height;
  request.frames = o.frames;
  request.dtype = wan::parse_dtype_name(o.dtype);
  request.fp8_weights = wan::parse_fp8_weights(o.fp8_weights);
  request.device = wan::parse_device_name(o.device);
  wan::validate_settings(request, /*require_output=*/false);
  wan::EstimateSettings s;
  s.width = o.width;
  s.height = o.height;
  s.picture = !o.image.empty();
  s.step_cache = request.cache.enabled();
  const bool model_given = !o.model.model_dir.empty() || !o.model.dit.empty();
  if (!o.image.empty() && !model_given) {  // with a model, make_plan below sizes it as generate does
    const wan::Rgb8Video picture = wan::read_image(o.image);
    const auto size = wan::image_to_video_size(o.width, o.height, picture.width, picture.height);
    if (size[0] <= 0 || size[1] <= 0)
      throw wan::Error(wan::ErrorCode::kInvalidArgument,
                       "--size " + o.size + " is too small an area for this picture's shape");
    s.width = static_cast<int>(size[0]);
    s.height = static_cast<int>(size[1]);
  }
  s.frames = o.frames;
  s.dtype = wan::parse_dtype_name(o.dtype);
  s.gpu = o.device != "cpu";
  wan::DistConfig current = dist_config_from_flags(o.dist, wan::parse_device_name(o.device));
  if (o.t5_cpu) current.t5_cpu = true;
  if (o.idle_expert_on_host) current.idle_expert_on_host = true;

  struct Row {
    wan::ModelDims dims;
    wan::Fp8Weights fp8_weights;
    std::string dit_on_disk;  // the loaded model's: "BF16", "F8_E4M3", "Q4_K", ...
  };
  std::vector<Row> models = {{wan::wan21_t2v_1_3b(), request.fp8_weights, ""},
                             {wan::wan21_t2v_14b(), request.fp8_weights, ""},
                             {wan::wan22_t2v_a14b(), request.fp8_weights, ""},
                             {wan::wan22_i2v_a14b(), request.fp8_weights, ""},
                             {wan::wan22_ti2v_5b(), request.fp8_weights, ""}};
  int heads = 0;  // the loaded model's, for the layout check; 0: not known
  if (model_given) {
    // Everything `wan generate` checks before loading (experts that do not pair, a VAE of the other
    // family, a TI2V size not a multiple of 32, a picture for a text-only model, a missing tokenizer)
    // from the files' headers, and the video size it would make (a picture's shape, TI2V's resize).
    wan::GenerationRequest planned = request;
    planned.model = o.model;
    planned.image = o.image;
    planned.device = wan::Device{};  // the checks, not the placement: a machine without a GPU estimates too
    const wan::RunPlan plan = wan::make_plan(planned, current, /*require_output=*/false);
    s.width = plan.request.width;
    s.height = plan.request.height;
    wan::ModelInfo info = wan::inspect_model(o.model);
    info.dims.name = "loaded " + info.label;
    heads = info.dims.num_heads;
    if (info.dims.dit_float8_params + info.dims.t5_float8_params > 0) {
      // A placement choice: a row for each, the one asked for first.
      for (wan::Fp8Weights mode :
           {request.fp8_weights,
            request.fp8_weights == wan::Fp8Weights::kKeep ? wan::Fp8Weights::kDequantize : wan::Fp8Weights::kKeep}) {
        Row row{info.dims, mode, info.dit_dtype};
        row.dims.name += mode == wan::Fp8Weights::kKeep ? ", fp8 kept" : ", fp8 dequantized";
        models.push_back(row);
      }
    } else {
      models.push_back({info.dims, request.fp8_weights, info.dit_dtype});
    }
  }
  // The layout asked for (any flag of it, the timeouts included) must be one `wan generate` would
  // start; the other columns are what-ifs.
  wan::check_dist_config(current, wan::DistEnvironment{-1, heads});
  nlohmann::json rows = nlohmann::json::array();
  for (const Row& model : models) {
    const wan::ModelDims& m = model.dims;
    s.fp8_weights = model.fp8_weights;
    nlohmann::json cells = nlohmann::json::array();
    for (int world : kColumns) {
      s.config = wan::layout_for_world(current, world, m.num_heads);
      const auto problems = wan::validate_dist_config(s.config, wan::DistEnvironment{-1, m.num_heads});
      nlohmann::json cell = {{"world_size", world},
                             {"current", world == current.world_size},
                             {"config", nlohmann::json::parse(wan::dist_config_to_json(s.config))}};
      if (!problems.empty())
        cell["invalid"] = problems.front().message;
      else
        cell["estimate"] = to_json(wan::estimate_memory(m, s, std::min(o.rank, world - 1)));
      cells.push_back(cell);
    }
    rows.push_back({{"model", m.name},
                    {"dit_params", m.dit_params > 0 ? m.dit_params : wan::dit_param_count(m)},  // one expert's
                    {"experts", m.experts},
                    {"t5_params", m.t5_params > 0 ? m.t5_params : wan::t5_param_count(m)},
                    {"vae_params", m.vae_params > 0 ? m.vae_params : wan::vae_param_count(m)},
                    {"dit_on_disk", model.dit_on_disk},
                    {"dit_float8_params", m.dit_float8_params},
                    {"t5_float8_params", m.t5_float8_params},
                    {"fp8_weights", wan::fp8_weights_name(model.fp8_weights)},
                    {"cells", cells}});
  }
  if (o.json) {
    nlohmann::json out = {{"width", s.width},
                          {"height", s.height},
                          {"frames", s.frames},
                          {"dtype", wan::dtype_name(s.dtype)},
                          {"device", s.gpu ? "cuda" : "cpu"},
                          {"rows", rows}};
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf("Estimated peak memory per %s (rank %d%s), %dx%d, %d frames, dtype %s\n", s.gpu ? "GPU" : "CPU process",
              o.rank, o.rank == 0 ? ", which also decodes" : "", s.width, s.height, s.frames, wan::dtype_name(s.dtype));
  int name_width = 32;  // the longest model name sets the first column (loaded models have long labels)
  for (const auto& row : rows)
    name_width = std::max(name_width, static_cast<int>(row["model"].get<std::string>().size()));
  std::printf("%-*s", name_width, "model");
  for (int world : kColumns) std::printf("  %8d %-4s", world, s.gpu ? (world == 1 ? "GPU" : "GPUs") : "proc");
  std::printf("\n");
  for (const auto& row : rows) {
    std::printf("%-*s", name_width, row["model"].get<std::string>().c_str());
    for (const auto& cell : row["cells"]) {
      const char mark = cell["current"].get<bool>() ? '*' : ' ';
      if (cell.contains("invalid"))
        std::printf("  %9s%c   ", "invalid", mark);
      else
        std::printf("  %8.2f GiB%c", gib(cell["estimate"]["peak_bytes"].get<std::int64_t>()), mark);
    }
    std::printf("\n");
  }
  std::printf(
      "* the current layout (world size %d); other columns keep its dtypes and sharding and spread context parallel\n",
      current.world_size);
  return 0;
}

}  // namespace wan_cli
