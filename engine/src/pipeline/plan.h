// A GenerationRequest validated into an immutable RunPlan: every setting checked, the model files
// found and their headers read (so a broken checkpoint fails before anything heavy runs), the latent
// shape, token count and schedule fixed.
#pragma once
#include <torch/types.h>

#include <array>
#include <cstdint>
#include <string>

#include "model/clip.h"
#include "model/dit_config.h"
#include "model/step_cache.h"
#include "model/t5.h"
#include "model/vae.h"
#include "pipeline/model_folder.h"
#include "sampling/schedule.h"
#include "video/video_writer.h"
#include "wan/dist_config.h"
#include "wan/generation.h"
#include "weights/tensor_source.h"

namespace wan {

// The reference's default negative prompt (wan/configs/shared_config.py sample_neg_prompt).
extern const char* const kDefaultNegativePrompt;
// What image-to-video puts in front of it (wan/configs/wan_i2v_14B.py: "camera shake,").
extern const char* const kImageToVideoNegativePrefix;

struct RunPlan {
  // As given, with the task's defaults resolved (steps, shift and guidance are set), the seed drawn and
  // the negative prompt filled in.
  GenerationRequest request;
  bool decode_only = false;  // request.decode_latent set: no text encoding, no sampling
  ResolvedModel files;
  SamplerKind sampler = SamplerKind::kUniPC;
  torch::ScalarType dtype = torch::kBFloat16;
  torch::Device device = torch::kCPU;
  torch::Device t5_device = torch::kCPU;
  std::array<std::int64_t, 4> latent_shape{};  // [z_dim, F_lat, H/8, W/8]
  std::int64_t seq_len = 0;                    // DiT tokens per forward
  DitConfig dit;
  T5Config t5;
  VaeConfig vae;
  TensorSourcePtr dit_source, t5_source, vae_source;  // opened (headers parsed, mmapped); the DiT with its LoRAs
  // Wan2.2 A14B: dit_source is the low-noise expert, dit_high_source the high-noise one (same `dit`
  // config); request.guidance_high and request.boundary are then set.
  bool moe = false;
  TensorSourcePtr dit_high_source;
  std::vector<std::string> notes;    // for the user (a LoRA applied only in part)
  std::vector<LoraFile> lora_files;  // request.model.loras with their files found (a name inside loras/)

  // Image-to-video (request.image set): the picture as the reference reads it, [3, h0, w0] float32 in
  // [-1, 1] on the CPU; request.width/height hold the output size, max_width/max_height the area asked.
  // TI2V-5B: `image` is the picture after its resize and centre crop, at the output size.
  bool i2v = false;
  torch::Tensor image;
  Rgb8Video picture;  // TI2V-5B: the picture as read (make_plan resizes and crops it into `image`)
  int max_width = 0, max_height = 0;
  ClipVisionConfig clip;
  TensorSourcePtr clip_source;

  // request.cache enabled: the published numbers it decides by, chosen for this model and task.
  std::optional<StepCacheProfile> cache;
};

// Throws wan::Error (kInvalidArgument for settings, kFileNotFound / kCorruptFile / kModelMismatch
// for model files, kUnsupported for what this version does not do) with a one-line message.
// require_output false: no output needs to be named (eval-case and the benchmark run the stages).
// `config` places the models (t5_cpu); the rest of it is the distributed runtime's.
RunPlan make_plan(const GenerationRequest& request, const DistConfig& config = DistConfig{},
                  bool require_output = true);

// Settings only (no files touched): what the studio validates live.
void validate_settings(const GenerationRequest& request, bool require_output = true);

}  // namespace wan
