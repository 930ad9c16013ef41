#include "bench/dit_bench.h"

#include <torch/torch.h>

#include <chrono>

#include "core/memory.h"
#include "core/runtime.h"
#include "model/dit.h"
#include "model/step_cache.h"
#include "pipeline/demo_model.h"
#include "sampling/sampler.h"
#include "wan/error.h"

namespace wan {
namespace {

void synchronize(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index() < 0 ? -1 : device.index());
}

void reset_peak(const torch::Device& device) {
  if (device.is_cuda())
    reset_device_peak_bytes(device.index() < 0 ? 0 : device.index());
  else
    reset_peak_rss();
}

std::int64_t read_peak(const torch::Device& device) {
  return device.is_cuda() ? device_peak_bytes(device.index() < 0 ? 0 : device.index()) : peak_rss_bytes();
}

using Clock = std::chrono::steady_clock;

}  // namespace

DitConfig bench_dit_config(const std::string& name) {
  DitConfig c;  // constructor defaults are the 1.3B model (dim 1536, 30 layers, 12 heads)
  if (name == "1.3B") return c;
  if (name == "5B") {  // Wan2.2 TI2V-5B (wan/configs/wan_ti2v_5B.py)
    c.kind = DitKind::kTI2V;
    c.dim = 3072;
    c.ffn_dim = 14336;
    c.num_heads = 24;
    c.num_layers = 30;
    c.in_dim = c.out_dim = 48;
    return c;
  }
  if (name == "14B" || name == "A14B") {  // A14B: each expert is a 14B (wan/configs/wan_t2v_A14B.py)
    c.dim = 5120;
    c.ffn_dim = 13824;
    c.num_heads = 40;
    c.num_layers = 40;
    return c;
  }
  if (name == "demo") {
    const DemoModelSpec d;
    c.dim = d.dit_dim;
    c.num_heads = d.dit_dim / 128;
    c.num_layers = d.dit_layers;
    c.ffn_dim = d.dit_ffn;
    c.text_dim = d.t5_dim;
    return c;
  }
  throw Error(ErrorCode::kInvalidArgument, "unknown bench model '" + name + "': use 1.3B, 14B, demo, 5B or A14B");
}

double dit_forward_flops(std::int64_t dim, std::int64_t ffn_dim, std::int64_t layers, std::int64_t tokens,
                         std::int64_t text_len, std::int64_t text_dim, std::int64_t freq_dim, std::int64_t patch_out) {
  const double L = static_cast<double>(tokens), T = static_cast<double>(text_len), d = static_cast<double>(dim);
  // Per block: self q,k,v,o (4 d^2 per token), cross q,o on tokens (2 d^2) and k,v on text (2 d^2 per
  // text token), FFN (2 d ffn), attention scores and values (2 * 2 * L * keys * d).
  double block = 2.0 * L * (6 * d * d + 2 * d * static_cast<double>(ffn_dim)) + 2.0 * T * 2 * d * d;
  block += 4.0 * L * L * d + 4.0 * L * T * d;
  double rest = 2.0 * T * (static_cast<double>(text_dim) * d + d * d);    // text embedding
  rest += 2.0 * (static_cast<double>(freq_dim) * d + d * d + 6 * d * d);  // time embedding
  rest += 2.0 * L * d * static_cast<double>(patch_out) * 2;               // patch embed + head
  return block * static_cast<double>(layers) + rest;
}

BenchResult run_dit_bench(const BenchOptions& o) {
  torch::NoGradGuard no_grad;
  DitConfig config = bench_dit_config(o.model);
  BenchResult r;
  r.model_layers = static_cast<int>(config.num_layers);
  if (o.layers > 0) config.num_layers = std::min<std::int64_t>(o.layers, config.num_layers);
  r.layers = static_cast<int>(config.num_layers);
  if (o.width % 16 || o.height % 16 || o.frames < 1 || (o.frames - 1) % 4)
    throw Error(ErrorCode::kInvalidArgument, "bench size: width and height multiples of 16, frames 4n+1");
  if (o.forwards < 1 || o.steps < 0 || o.warmup < 0)
    throw Error(ErrorCode::kInvalidArgument, "bench: --forwards >= 1, --steps >= 0");
  const torch::Device device = parse_device(o.device);
  const std::string dtype_name_str = o.dtype == "auto" ? (device.is_cpu() ? "fp32" : "bf16") : o.dtype;
  const torch::ScalarType dtype = parse_dtype(dtype_name_str);
  r.label = o.model +
            (o.layers > 0 ? " (" + std::to_string(r.layers) + "/" + std::to_string(r.model_layers) + " layers)" : "") +
            " " + std::to_string(o.width) + "x" + std::to_string(o.height) + "x" + std::to_string(o.frames) + " " +
            dtype_name_str + " " + device.str();

  reset_peak(device);
  const torch::Generator gen = at::detail::createCPUGenerator(0);
  const auto build = [&](torch::Device where) {
    ModelPlacement placement = ModelPlacement::make(dtype, device);
    placement.device = where;  // the device's dtypes, on `where`
    WanModel m(config, placement);
    for (auto& p : m->parameters()) {
      p.copy_(torch::randn(p.sizes(), gen, torch::kFloat32).mul_(0.02));
      r.parameter_bytes += p.numel() * p.element_size();
    }
    m->eval();
    return m;
  };
  WanModel dit = build(device);
  // A14B: the second expert, on the device or (idle_expert_on_host) in pinned host memory.
  WanModel idle{nullptr};
  if (o.model == "A14B") {
    r.experts = 2;
    const bool on_host = o.idle_expert_on_host && !device.is_cpu();
    idle = build(on_host ? torch::Device(torch::kCPU) : device);
    if (on_host)
      for (torch::Tensor& p : idle->parameters()) p.set_data(p.data().pin_memory());
  }
  const std::int64_t stride = config.out_dim == 48 ? 16 : 8;  // the Wan2.2 VAE: 2x2 patchify, then 8x
  if (o.width % (2 * stride) || o.height % (2 * stride))
    throw Error(ErrorCode::kInvalidArgument,
                "bench size: width and height multiples of " + std::to_string(2 * stride) + " for " + o.model);
  const std::int64_t f_lat = (o.frames - 1) / 4 + 1, h = o.height / stride, w = o.width / stride;
  r.tokens = f_lat * (h / 2) * (w / 2);
  r.text_len = config.text_len;
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32).device(device);
  const torch::Tensor latent = torch::randn({config.out_dim, f_lat, h, w}, gen, torch::kFloat32).to(device);
  const torch::Tensor context = torch::randn({24, config.text_dim}, gen, torch::kFloat32).to(device);
  const torch::Tensor context_null = torch::randn({60, config.text_dim}, gen, torch::kFloat32).to(device);
  (void)f32;

  for (int i = 0; i < o.warmup; ++i) dit->forward(latent, 999, context);
  synchronize(device);
  Clock::time_point t0 = Clock::now();
  for (int i = 0; i < o.forwards; ++i) dit->forward(latent, 999 - i, context);
  synchronize(device);
  r.forward_seconds = std::chrono::duration<double>(Clock::now() - t0).count() / o.forwards;

  if (o.steps > 0) {
    const SamplerKind kind = parse_sampler(o.sampler);
    auto sampler = make_sampler(kind, o.steps, 5.0);
    const StepCacheSettings cache_settings = parse_step_cache(o.cache);
    if (cache_settings.enabled()) {
      StepCacheModel m;
      m.dim = config.dim;
      m.ti2v = config.out_dim == 48;
      m.moe = o.model == "A14B";  // its first expert's steps (no boundary here: all high-noise)
      m.high_noise_steps = m.moe ? o.steps : 0;
      m.area = static_cast<std::int64_t>(o.width) * o.height;
      m.steps = o.steps;
      dit->step_cache = std::make_shared<StepCache>(make_step_cache_profile(cache_settings, m));
    }
    const std::int64_t forwards_before = dit->forward_count;
    torch::Tensor x = latent;
    t0 = Clock::now();
    for (int i = 0; i < o.steps; ++i) {
      const double t = static_cast<double>(sampler->current_timestep());
      if (dit->step_cache) dit->step_cache->begin_step(i, o.guidance == 1.0 ? 1 : 2, dit.get());
      const torch::Tensor cond = dit->forward(x, t, context);
      if (o.guidance == 1.0) {  // as denoise: no unconditional pass
        x = sampler->step(cond, x);
      } else {
        const torch::Tensor uncond = dit->forward(x, t, context_null);
        x = sampler->step(uncond + o.guidance * (cond - uncond), x);
      }
    }
    synchronize(device);
    r.sampling_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    r.step_seconds = r.sampling_seconds / o.steps;
    r.step_forwards = dit->forward_count - forwards_before;
    if (dit->step_cache) r.step_forwards_cached = dit->step_cache->skipped_forwards();
    dit->step_cache = nullptr;
  }
  if (idle && o.idle_expert_on_host && !device.is_cpu()) {
    // The boundary of an A14B run: the expert that ran is freed, the idle one copied in.
    synchronize(device);
    t0 = Clock::now();
    dit->release_weights();
    idle->move_to(device);
    synchronize(device);
    r.expert_swap_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  }
  r.peak_memory_bytes = read_peak(device);
  r.memory_kind = device.is_cuda() ? "cuda_allocator" : "cpu_rss";
  r.tokens_per_second = static_cast<double>(r.tokens) / r.forward_seconds;
  r.flops_per_forward = dit_forward_flops(config.dim, config.ffn_dim, config.num_layers, r.tokens, config.text_len,
                                          config.text_dim, config.freq_dim, 4 * config.out_dim);
  r.achieved_tflops = r.flops_per_forward / r.forward_seconds / 1e12;
  // Dense peak of an H100/H200 SXM unless told otherwise (NVIDIA H100 datasheet): 989 TFLOP/s bf16/fp16
  // on tensor cores; fp32 67 TFLOP/s, since LibTorch computes fp32 matmuls in full fp32 unless TF32 is
  // allowed (at::globalContext().allowTF32CuBLAS(), off by default), which the engine leaves off.
  r.peak_tflops = o.peak_tflops > 0  ? o.peak_tflops
                  : device.is_cuda() ? (dtype == torch::kFloat32 ? 67.0 : 989.0)
                                     : 0.0;
  r.mfu = r.peak_tflops > 0 ? r.achieved_tflops / r.peak_tflops : 0.0;
  return r;
}

}  // namespace wan
