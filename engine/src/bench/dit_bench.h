// `wan bench`: DiT forward and sampling-step timings, tokens/s, peak memory and model FLOP
// utilisation for 1.3B-, 14B- or demo-sized Wan2.1 models and Wan2.2's TI2V-5B (48 latent channels, 16
// pixels per latent pixel) and A14B (two 14B experts) built with random weights (no files).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace wan {

struct BenchOptions {
  std::string model = "1.3B";  // 1.3B | 14B | demo | 5B | A14B
  // A14B: the low-noise expert waits in host memory (pinned on CUDA) and the swap at the boundary is
  // timed (DistConfig::idle_expert_on_host).
  bool idle_expert_on_host = false;
  int width = 832, height = 480, frames = 81;
  std::string dtype = "auto";  // fp32 | bf16 | fp16 | auto
  std::string device = "cpu";
  int layers = 0;    // > 0: build only this many blocks (figures scale with depth)
  int warmup = 1;    // untimed forwards first
  int forwards = 2;  // timed forwards
  int steps = 1;     // timed sampling steps (2 forwards + CFG + UniPC each)
  // The sampling steps' levers (issue 21): guidance 1 runs one forward a step; "distill" samples the
  // distill list for `steps`; a step cache ("teacache:0.2", "magcache:0.12") skips blocks (with random
  // weights TeaCache's decisions say little about a trained model's; MagCache's follow the curve alone).
  double guidance = 5.0;
  std::string sampler = "unipc";
  std::string cache = "none";
  double peak_tflops = 0;  // device peak for MFU; 0: a default for known GPUs, none on CPU
};

struct BenchResult {
  std::string label;        // "1.3B 832x480x81 bf16 cuda"
  std::int64_t tokens = 0;  // per forward
  std::int64_t text_len = 0;
  int layers = 0, model_layers = 0;
  double forward_seconds = 0, step_seconds = 0;
  double tokens_per_second = 0;
  double flops_per_forward = 0;  // analytic, matmuls and attention
  double achieved_tflops = 0;
  double peak_tflops = 0;  // 0 when unknown
  double mfu = 0;          // achieved / peak, 0 when unknown
  std::int64_t parameter_bytes = 0;
  std::int64_t peak_memory_bytes = 0;
  std::string memory_kind;         // "cpu_rss" | "cuda_allocator"
  int experts = 1;                 // A14B: 2 (both built; the forwards run the high-noise one)
  double expert_swap_seconds = 0;  // A14B with idle_expert_on_host: freeing one, copying the other in
  // The timed sampling steps: all of them, the DiT forwards they ran and how many took their blocks
  // from the step cache.
  double sampling_seconds = 0;
  std::int64_t step_forwards = 0, step_forwards_cached = 0;
};

BenchResult run_dit_bench(const BenchOptions& options);

// The DiT configuration of a bench model size ("1.3B", "14B", "demo", "5B", "A14B": one expert's);
// throws for others.
struct DitConfig;
DitConfig bench_dit_config(const std::string& name);

// Analytic FLOPs of one DiT forward (2 per multiply-add): linear layers, self-attention (QK^T and PV
// over `tokens` keys) and cross-attention (over text_len keys).
double dit_forward_flops(std::int64_t dim, std::int64_t ffn_dim, std::int64_t layers, std::int64_t tokens,
                         std::int64_t text_len, std::int64_t text_dim, std::int64_t freq_dim, std::int64_t patch_out);

}  // namespace wan
