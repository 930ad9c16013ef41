#include "bench_command.h"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "bench/dist_bench.h"
#include "job_flags.h"
#include "model/layers.h"
#include "wan/error.h"
#include "weights/file_util.h"

namespace wan_cli {

CLI::App* add_bench_command(CLI::App& app, BenchCommandOptions& o) {
  CLI::App* cmd =
      app.add_subcommand("bench", "Time DiT forwards and sampling steps on random-weight Wan models (no files)");
  cmd->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  cmd->add_option("--model", o.models, "model sizes, comma separated: 1.3B, 14B, demo, 5B (Wan2.2 TI2V), A14B")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--size", o.size, "WIDTH*HEIGHT (default 832*480)");
  cmd->add_option("--attention", o.attention,
                  "attention modes, comma separated: sdpa (fused kernels), math (reference); "
                  "each model is timed with each, one after the other")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--frames", o.base.frames, "frames, 4n+1")->capture_default_str();
  cmd->add_option("--dtype", o.base.dtype, "fp32 | bf16 | fp16 | auto")->capture_default_str();
  cmd->add_option("--device", o.base.device, "cpu | cuda | cuda:N")->capture_default_str();
  cmd->add_option("--layers", o.base.layers, "build only this many DiT blocks (0: all); figures scale with depth")
      ->capture_default_str();
  cmd->add_option("--warmup", o.base.warmup, "untimed forwards")->capture_default_str();
  cmd->add_option("--forwards", o.base.forwards, "timed forwards")->capture_default_str();
  cmd->add_option("--world-size", o.world_size,
                  "ranks (threads over gloo, CPU): report compute, communication and bytes per step");
  cmd->add_option("--ulysses", o.ulysses, "with --world-size: Ulysses size");
  cmd->add_option("--ring", o.ring, "with --world-size: ring size");
  cmd->add_flag("--cfg-parallel", o.cfg_parallel, "with --world-size: CFG parallel");
  cmd->add_flag("--dit-fsdp", o.dit_fsdp, "with --world-size: shard the DiT's weights across the ranks (FSDP-style)");
  cmd->add_option("--sharding", o.sharding, "with --dit-fsdp: FULL_SHARD | SHARD_GRAD_OP | NO_SHARD")
      ->capture_default_str();
  cmd->add_option("--steps", o.base.steps,
                  "timed sampling steps (2 forwards + CFG + the sampler each; one forward with --guidance 1)")
      ->capture_default_str();
  o.guidance_option =
      cmd->add_option("--guidance", o.base.guidance,
                      "the steps' guidance scale (1: one forward a step, no CFG; default 5, with --sampler distill 1)");
  cmd->add_option("--sampler", o.base.sampler, "the steps' sampler: unipc | dpm++ | distill")->capture_default_str();
  cmd->add_option("--cache", o.base.cache,
                  "the steps' step cache: none | teacache:THRESHOLD[:WARMUP] | magcache:THRESHOLD[:WARMUP[:K]]")
      ->capture_default_str();
  cmd->add_flag("--idle-expert-on-host", o.base.idle_expert_on_host,
                "A14B on a GPU: build the second expert in pinned host memory and time its swap in");
  cmd->add_option("--peak-tflops", o.base.peak_tflops,
                  "device peak TFLOP/s for MFU (default: H100/H200 dense on CUDA)");
  cmd->add_option("--json", o.json, "also write the results as JSON");
  return cmd;
}

namespace {
int run_dist_bench_command(BenchCommandOptions& o) {
  wan::DistConfig c;
  c.world_size = o.world_size;
  c.backend = wan::resolve_backend(c, wan::Device{});  // CPU ranks
  c.cfg_parallel = o.cfg_parallel;
  c.ulysses_size = std::max(1, o.ulysses);
  c.ring_size = std::max(1, o.ring);
  c.use_context_parallel = o.ulysses > 0 || o.ring > 0;
  if (o.dit_fsdp) {
    nlohmann::json j = {{"dit_fsdp", true}, {"sharding_strategy", o.sharding}};
    c = wan::dist_config_from_json(j.dump(), c);
  }
  for (const std::string& model : o.models) {
    wan::BenchOptions b = o.base;
    b.model = model;
    const wan::DistBenchResult r = wan::run_dist_bench(b, c);
    std::printf("%s (per sampling step, per rank)\n", r.label.c_str());
    std::printf("%-6s %10s %10s %10s", "rank", "step s", "compute s", "comm s");
    for (int k = 0; k < wan::kBenchCollectiveKinds; ++k)
      if (r.analytic_bytes_per_step[k] > 0) std::printf(" %14s", (r.kind_names[k] + " MB").c_str());
    std::printf(" %14s %14s\n", "params MB", "params peak MB");
    for (const auto& rank : r.ranks) {
      std::printf("%-6d %10.3f %10.3f %10.3f", rank.rank, rank.step_seconds, rank.step_seconds - rank.comm_seconds,
                  rank.comm_seconds);
      for (int k = 0; k < wan::kBenchCollectiveKinds; ++k)
        if (r.analytic_bytes_per_step[k] > 0) std::printf(" %14.3f", rank.bytes_per_step[k] / 1e6);
      std::printf(" %14.3f %14.3f\n", rank.param_bytes_at_rest / 1e6, rank.param_bytes_peak / 1e6);
    }
    std::printf("%-6s %32s", "min", "analytic for the layout:");
    for (int k = 0; k < wan::kBenchCollectiveKinds; ++k)
      if (r.analytic_bytes_per_step[k] > 0) std::printf(" %14.3f", r.analytic_bytes_per_step[k] / 1e6);
    std::printf("\n");
    std::printf(
        "DiT parameters: %.3f MB unsharded; params MB = held by the rank between steps, peak = the most "
        "held at once during the steps (measured from its tensors)\n",
        r.model_param_bytes / 1e6);
  }
  return 0;
}
}  // namespace

int run_bench_command(BenchCommandOptions& o) {
  if (!o.size.empty()) parse_size(o.size, o.base.width, o.base.height);
  std::vector<wan::AttentionMode> modes;  // every mode checked before any run
  for (const std::string& a : o.attention) modes.push_back(wan::parse_attention_mode(a));
  if (o.world_size > 0 && modes.size() > 1)
    throw wan::Error(wan::ErrorCode::kInvalidArgument, "--attention takes one mode with --world-size");
  // The levers are checked before anything is built; the distill sampler's guidance is 1 unless given.
  (void)wan::parse_sampler(o.base.sampler);
  const wan::StepCacheSettings cache = wan::parse_step_cache(o.base.cache);
  if (o.base.sampler == "distill" && !(o.guidance_option && o.guidance_option->count()))
    o.base.guidance = wan::kDistillDefaultGuidance;
  if (o.world_size > 0) {
    if (o.base.sampler != "unipc" || o.base.guidance != 5.0 || cache.enabled())
      throw wan::Error(wan::ErrorCode::kInvalidArgument,
                       "--guidance, --sampler and --cache time the steps of one process; with --world-size the "
                       "bench accounts a layout's communication per step (run it without them)");
    wan::set_attention_mode(modes.front());
    return run_dist_bench_command(o);
  }
  nlohmann::json all = nlohmann::json::array();
  std::printf("%-44s %8s %10s %10s %10s %10s %8s %12s %12s\n", "configuration", "tokens", "s/forward", "s/step",
              "tokens/s", "TFLOP/s", "MFU", "params GiB", "peak GiB");
  for (const std::string& model : o.models)
    for (std::size_t m = 0; m < modes.size(); ++m) {
      const std::string& attention = o.attention[m];
      wan::set_attention_mode(modes[m]);
      wan::BenchOptions b = o.base;
      b.model = model;
      wan::BenchResult r = wan::run_dit_bench(b);
      if (o.attention.size() > 1) r.label += " " + attention;
      if (b.steps > 0)
        std::printf(
            "%s: %d steps (%s, guidance %g, cache %s): %lld DiT forwards, %lld with the blocks from the cache, "
            "%.3f s\n",
            r.label.c_str(), b.steps, b.sampler.c_str(), b.guidance, b.cache.c_str(),
            static_cast<long long>(r.step_forwards), static_cast<long long>(r.step_forwards_cached),
            r.sampling_seconds);
      if (r.expert_swap_seconds > 0)
        std::printf("%s: expert swap at the boundary %.3f s (free one, copy the other from pinned host memory)\n",
                    r.label.c_str(), r.expert_swap_seconds);
      char mfu[16] = "-";
      if (r.peak_tflops > 0) std::snprintf(mfu, sizeof mfu, "%.1f%%", 100.0 * r.mfu);
      char step[16] = "-";
      if (b.steps > 0) std::snprintf(step, sizeof step, "%.3f", r.step_seconds);
      std::printf("%-44s %8lld %10.3f %10s %10.0f %10.3f %8s %12.2f %12.2f\n", r.label.c_str(),
                  static_cast<long long>(r.tokens), r.forward_seconds, step, r.tokens_per_second, r.achieved_tflops,
                  mfu, static_cast<double>(r.parameter_bytes) / (1ull << 30),
                  static_cast<double>(r.peak_memory_bytes) / (1ull << 30));
      std::fflush(stdout);
      all.push_back({{"configuration", r.label},
                     {"attention", attention},
                     {"tokens", r.tokens},
                     {"text_len", r.text_len},
                     {"layers", r.layers},
                     {"model_layers", r.model_layers},
                     {"seconds_per_forward", r.forward_seconds},
                     {"seconds_per_step", r.step_seconds},
                     {"tokens_per_second", r.tokens_per_second},
                     {"flops_per_forward", r.flops_per_forward},
                     {"achieved_tflops", r.achieved_tflops},
                     {"peak_tflops", r.peak_tflops},
                     {"mfu", r.mfu},
                     {"parameter_bytes", r.parameter_bytes},
                     {"peak_memory_bytes", r.peak_memory_bytes},
                     {"memory_kind", r.memory_kind},
                     {"experts", r.experts},
                     {"expert_swap_seconds", r.expert_swap_seconds},
                     {"steps", b.steps},
                     {"sampler", b.sampler},
                     {"guidance", b.guidance},
                     {"cache", b.cache},
                     {"sampling_seconds", r.sampling_seconds},
                     {"step_forwards", r.step_forwards},
                     {"step_forwards_cached", r.step_forwards_cached}});
    }
  std::printf("peak memory: %s\n", o.base.device == "cpu" ? "process RSS high-water mark (includes the model build)"
                                                          : "CUDA caching-allocator peak");
  if (!o.json.empty()) {
    const std::string text = all.dump(2) + "\n";
    wan::AtomicFileWriter w(o.json);
    w.write(text.data(), text.size());
    w.commit();
  }
  return 0;
}

}  // namespace wan_cli
