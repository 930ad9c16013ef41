// How a distributed run plugs into wan::generate: the velocity of each step comes from the parallel
// DiT, and only the output rank saves, decodes and writes. Internal (torch types).
#pragma once
#include <functional>
#include <string>

#include "pipeline/text_to_video.h"
#include "wan/generation.h"

namespace wan {

struct RankHooks {
  // Called once the DiT is loaded; returns the step velocity for this run (image: image-to-video's
  // conditioning, empty for text-to-video).
  std::function<VelocityFn(WanModel& dit, const TextContexts& text, const ImageContext& image)> make_velocity;
  ShardingLoader dit_sharding, t5_sharding;  // dit_fsdp / t5_fsdp (empty: full weights)
  bool output_rank = true;  // saves the latent, decodes and writes the outputs
  // Without --save-latent, write the latent to the rescue path before decoding and remove it once the
  // outputs are written, so a decode that dies (even killed) never loses the sampling.
  bool save_latent_before_decode = false;
  StepObserver on_step;     // after each sampling step, with the current latent (live preview)
  std::string world_json;   // the distributed config recorded in the sidecar (empty: one process)
};

// Where a sampled latent is kept when decoding or writing fails: "<output stem>.latent.safetensors".
std::string rescue_latent_path(const GenerationRequest& request);

GenerationResult generate_with_hooks(const GenerationRequest& request, const ProgressFn& progress, const RankHooks& hooks);

}  // namespace wan
