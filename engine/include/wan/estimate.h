// Memory estimator: peak memory per rank (per GPU, or per CPU process) of a generation, from the model's
// sizes, the video size and the distributed settings, split into weights / activations / text encoder /
// VAE decode. Plain arithmetic, no torch: the studio's estimator table, `wan estimate` and the "Auto"
// preset use it. docs/MEMORY.md states the formulas and compares them with measured peaks.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "wan/dist_config.h"

namespace wan {

// What the estimate needs to know about a model. The defaults are Wan2.1-T2V-1.3B with umT5-XXL and
// the Wan2.1 VAE. Parameter counts: exact when read from the files (model_info.h), else computed.
struct ModelDims {
  std::string name = "Wan2.1-T2V-1.3B";
  bool i2v = false;
  bool ti2v = false;  // Wan2.2 TI2V-5B: text- or image-to-video by one DiT (48 channels, no y, no CLIP)
  bool clip = true;   // i2v: the CLIP vision tower runs and the DiT has k_img/v_img (Wan2.1; not Wan2.2 I2V-A14B)
  int dim = 1536, ffn_dim = 8960, num_heads = 12, num_layers = 30;
  int in_dim = 16, out_dim = 16, text_dim = 4096, freq_dim = 256, text_len = 512;
  int t5_dim = 4096, t5_ffn = 10240, t5_heads = 64, t5_layers = 24, t5_vocab = 256384, t5_buckets = 32;
  int vae_dim = 96, z_dim = 16;
  // The Wan2.2 VAE (TI2V-5B): 16 pixels per latent pixel (a 2x2 patchify, then 8x), a decoder of its own
  // width working at half resolution (model/vae22.h). 0: the Wan2.1 VAE (stride 8, decoder = vae_dim).
  int vae_stride = 8, vae_dec_dim = 0;
  // Image-to-video's CLIP vision tower (ViT-H/14 in Wan2.1; all blocks but the last run).
  int clip_dim = 1280, clip_mlp = 5120, clip_heads = 16, clip_layers = 32, clip_tokens = 257;
  std::int64_t dit_params = 0, t5_params = 0, vae_params = 0;  // 0: computed from the sizes
  std::int64_t clip_params = 0;                                // of the blocks that run; 0: computed from the sizes
  // Parameters of the Linear weights the files store in float8 (model_info.h counts them): what
  // Fp8Weights::kKeep keeps at 1 byte each. 0: the files hold no float8 weights.
  std::int64_t dit_float8_params = 0, t5_float8_params = 0;
  // DiTs held while sampling: 2 for Wan2.2 A14B's experts (both loaded, each sharded alike), else 1.
  int experts = 1;
};
ModelDims wan21_t2v_1_3b();
ModelDims wan21_t2v_14b();
ModelDims wan21_i2v_14b();  // I2V-14B-480P / -720P (same sizes)
// Wan2.2 A14B (wan/configs/wan_{t2v,i2v}_A14B.py): two experts of the 14B's sizes; I2V takes y channels
// (in_dim 36) and no CLIP.
ModelDims wan22_t2v_a14b();
ModelDims wan22_i2v_a14b();
// Wan2.2 TI2V-5B (wan/configs/wan_ti2v_5B.py: dim 3072, ffn 14336, 24 heads, 30 layers, 48 channels)
// with the Wan2.2 VAE (dim 160, dec_dim 256, z 48: kVae22Params parameters).
ModelDims wan22_ti2v_5b();
constexpr std::int64_t kVae22Params = 704688668;  // counted from model/vae22.h's module at the release sizes

std::int64_t dit_param_count(const ModelDims& m);   // exact for the Wan2.1 DiT layout
std::int64_t t5_param_count(const ModelDims& m);    // exact for the umT5 encoder layout
std::int64_t vae_param_count(const ModelDims& m);   // the 127 M of the Wan2.1 VAE, scaled by (vae_dim / 96)^2
std::int64_t clip_param_count(const ModelDims& m);  // the CLIP blocks image-to-video runs (exact layout)

struct EstimateSettings {
  int width = 832, height = 480, frames = 81;
  Dtype dtype = Dtype::kAuto;                        // the request's --dtype
  Fp8Weights fp8_weights = Fp8Weights::kDequantize;  // the request's --fp8-weights
  bool gpu = true;  // false: CPU ranks (gloo); the figure is then the process's resident set
  // A start picture is given: Wan2.2 TI2V-5B then encodes it (image-to-video); image-to-video-only
  // models always count their picture's encode.
  bool picture = false;
  bool step_cache = false;  // --cache: each rank keeps a float32 residual per pass of its tokens
  DistConfig config;
};

// Bytes on one rank. `peak` is the largest phase plus `runtime`; the other fields are what that rank
// holds in each phase, so the tooltip can show where the memory goes.
struct MemoryEstimate {
  std::int64_t weights = 0;        // DiT parameters resident while sampling (shards + gathered units)
  std::int64_t activations = 0;    // DiT forward working set (tokens of this rank, attention, FFN)
  std::int64_t text_encoder = 0;   // umT5 phase (weights + activations); 0 on a GPU with t5_cpu
  std::int64_t image_encoder = 0;  // image-to-video: the larger of CLIP (weights + activations) and the
                                   // VAE encode of the start picture and its black frames; else 0
  std::int64_t vae_decode = 0;     // VAE weights + decode working set + the decoded video (output rank)
  std::int64_t runtime = 0;        // fixed cost: CUDA context and allocator slack, or the process baseline
  std::int64_t peak = 0;
  std::string peak_phase;  // "text" | "image" | "sampling" | "decoding"
};

// Call with rank 0 for the figure users care about (rank 0 also decodes).
MemoryEstimate estimate_memory(const ModelDims& model, const EstimateSettings& settings, int rank = 0);

// The layout shown in the estimator's column for `gpus` GPUs under the user's current settings: the
// dtypes, FSDP flags and strategy are kept; context parallel (ulysses as large as the heads allow, then
// ring) spans the GPUs that CFG parallel leaves. Valid for `num_heads` (see validate_dist_config).
DistConfig layout_for_world(const DistConfig& current, int world_size, int num_heads);

// "Auto": the fastest layout for `gpus` GPUs of `gpu_memory_bytes` each that fits (estimated peak under
// 92 % of the memory). Candidates from fastest: CFG parallel + Ulysses, no sharding; then (Wan2.2 A14B)
// the idle expert in host memory; then DiT FULL_SHARD;
// then also T5 sharded; then T5 on the CPU. `reason` says what was chosen and why; when nothing fits, the
// most frugal layout is returned and `fits` is false.
struct AutoLayout {
  DistConfig config;
  MemoryEstimate estimate;
  bool fits = false;
  std::string reason;
};
AutoLayout auto_layout(const ModelDims& model, const EstimateSettings& settings, int gpus,
                       std::int64_t gpu_memory_bytes);

// A fixed preset (resources/presets/N-gpu.json) made to fit the loaded model, keeping its world size and
// its kind of layout: a Ulysses size that does not divide the model's heads gives the rest of the split
// to the ring (gcd); for Wan2.2 A14B without DiT sharding on a GPU, when the estimate of both experts
// exceeds 92 % of `gpu_memory_bytes` (0: unknown, no change) and one expert's is lower,
// idle_expert_on_host is set; a one-DiT model drops idle_expert_on_host. `note` (may be null) gets a
// sentence per change, empty when none. Pure: reads no file, throws nothing.
DistConfig fit_preset_to_model(const DistConfig& preset, const ModelDims& model, const EstimateSettings& settings,
                               std::int64_t gpu_memory_bytes, std::string* note);

// What an out-of-memory message offers (issue 17): changes to the settings that lower the memory of the
// phase that failed, each with the estimate after the change, most effective first. `phase` is the
// failing phase's phase_name ("text", "loading", "sampling", "decoding", "writing"; anything else: the
// whole run's peak). The figure compared is one rank's need in that phase (estimate_memory, rank 0,
// the output rank) plus `runtime`; on the CPU every rank shares the host, so it is multiplied by the
// world size there and more ranks never help. Only changes that lower the estimate by 5 % or more are
// returned; at most `limit`.
// How a run refused before it starts because the estimate exceeds the free memory ends its message
// (exit code 11): the studio recognises it and asks whether to start anyway (GenerationRequest::force).
constexpr const char* kStartAnywayHint = "; or --force to start anyway";

struct MemoryRemedy {
  std::string flags;        // the command line's words, e.g. "--t5-cpu" or "--width 624 --height 352"
  std::string description;  // plain words: "run umT5 on the CPU"
  std::int64_t bytes = 0;   // estimated need of the phase after the change (same unit as phase_bytes)
};
// One rank's bytes in `phase` (of an estimate) plus its runtime term.
std::int64_t phase_bytes(const MemoryEstimate& estimate, const std::string& phase);
// The figure the remedies are compared by: phase_bytes of rank 0, times the world size on the CPU.
std::int64_t phase_need_bytes(const ModelDims& model, const EstimateSettings& settings, const std::string& phase);
std::vector<MemoryRemedy> memory_remedies(const ModelDims& model, const EstimateSettings& settings,
                                          const std::string& phase, int limit = 4);

}  // namespace wan
