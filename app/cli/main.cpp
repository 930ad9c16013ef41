// `wan`: the headless command line. Thin: parses flags, calls the engine, turns errors into exit codes.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "bench_command.h"
#include "core/out_of_memory.h"
#include "core/runtime.h"
#include "estimate_command.h"
#include "generate_command.h"
#include "pipeline/demo_model.h"
#include "wan/error.h"
#include "wan/eval_case.h"
#include "wan/version.h"

namespace {

int run_eval_case_command(const std::string& case_dir, const std::string& out, const wan::EvalCaseOptions& options) {
  const wan::EvalCaseResult result = wan::run_eval_case(case_dir, out, options);
  std::printf("case %s (%s, %s): wrote %s\n", case_dir.c_str(), result.kind.c_str(), options.dtype.c_str(),
              out.c_str());
  for (const auto& [name, err] : result.relative_errors)
    std::printf("  %-16s rel. L2 error vs reference %.3e\n", name.c_str(), err);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Wan Studio engine: Wan2.1 and Wan2.2 video generation from the command line"};
  app.require_subcommand(1);
  // LibTorch, CUDA, NCCL and cuDNN as built, and the GPUs this machine shows.
  app.set_version_flag("--version", [] { return wan::build_info_text(wan::build_info()); });
  int threads = 0;
  app.add_option("--threads", threads, "CPU threads for LibTorch (default: all cores)")
      ->check(CLI::Range(0, wan::kMaxThreads));

  wan::EvalCaseOptions eval_options;
  std::string case_dir, case_out;
  CLI::App* eval = app.add_subcommand("eval-case", "Run a reference case folder and write its outputs");
  eval->add_option("CASE_DIR", case_dir, "case folder (config.json, weights, io.safetensors, case.json)")->required();
  eval->add_option("OUT", case_out, "output .safetensors")->required();
  eval->add_option("--dtype", eval_options.dtype, "fp32 | bf16 | fp16")->default_val("fp32");
  eval->add_option("--device", eval_options.device, "cpu | cuda | cuda:N")->default_val("cpu");

  wan_cli::JobFlags generate_flags;
  CLI::App* generate = wan_cli::add_generate_command(app, generate_flags);

  wan_cli::BenchCommandOptions bench_options;
  CLI::App* bench = wan_cli::add_bench_command(app, bench_options);

  wan_cli::EstimateOptions estimate_options;
  CLI::App* estimate = wan_cli::add_estimate_command(app, estimate_options);
  std::string demo_dir;
  CLI::App* demo =
      app.add_subcommand("make-demo-model", "Write the small random-weight demo model in the official folder layout");
  demo->add_option("DIR", demo_dir, "new folder (default: the demo model location the CLI and studio use)");
  wan::DemoModelSpec demo_spec;
  demo->add_option("--dim", demo_spec.dit_dim, "DiT width (heads of 128)")->capture_default_str();
  demo->add_option("--layers", demo_spec.dit_layers, "DiT blocks")->capture_default_str();
  demo->add_option("--ffn", demo_spec.dit_ffn, "DiT FFN width")->capture_default_str();
  demo->add_option("--t5-dim", demo_spec.t5_dim, "umT5 width")->capture_default_str();
  demo->add_option("--t5-layers", demo_spec.t5_layers, "umT5 blocks")->capture_default_str();
  demo->add_option("--t5-ffn", demo_spec.t5_ffn, "umT5 FFN width")->capture_default_str();
  demo->add_option("--vae-dim", demo_spec.vae_dim, "VAE base width (96 in Wan2.1)")->capture_default_str();
  demo->add_flag("--i2v", demo_spec.i2v, "an image-to-video model (I2V DiT and a CLIP vision tower)");
  demo->add_flag("--moe", demo_spec.moe,
                 "a Wan2.2 A14B-style pair of experts (high_noise_model/, low_noise_model/); with --i2v, Wan2.2's "
                 "image-to-video (no CLIP)");
  demo->add_flag("--ti2v", demo_spec.ti2v,
                 "a Wan2.2 TI2V-5B-style model (48-channel DiT and the Wan2.2 VAE): text- or image-to-video");
  demo->add_option("--clip-dim", demo_spec.clip_dim, "CLIP vision width (1280 in Wan2.1; heads of 16)")
      ->capture_default_str();
  demo->add_option("--clip-layers", demo_spec.clip_layers, "CLIP vision blocks (the last is unused)")
      ->capture_default_str();

  if (const int code = wan_cli::parse_command_line(app, argc, argv); code >= 0) return code;
  try {
    wan::init_runtime(threads);
    if (eval->parsed()) return run_eval_case_command(case_dir, case_out, eval_options);
    if (generate->parsed()) return wan_cli::run_generate_command(generate_flags);
    if (estimate->parsed()) return wan_cli::run_estimate_command(estimate_options);
    if (bench->parsed()) return wan_cli::run_bench_command(bench_options);
    if (demo->parsed()) {
      if (demo_dir.empty())
        demo_dir = wan::default_demo_model_dir() + (demo_spec.ti2v ? "-ti2v" : "") + (demo_spec.moe ? "-moe" : "") +
                   (demo_spec.i2v ? "-i2v" : "");
      wan::make_demo_model(demo_dir, demo_spec);
      std::printf("wrote the demo model (random weights) to %s\n", demo_dir.c_str());
      return 0;
    }
  } catch (const std::exception& failure) {
    const wan::Error e = wan::to_engine_error(failure);  // allocation failures named, no LibTorch stack trace
    std::fprintf(stderr, "wan: %s: %s\n", e.code() == wan::ErrorCode::kInternal ? "internal error" : "error", e.what());
    return static_cast<int>(e.code());
  }
  return 0;
}
