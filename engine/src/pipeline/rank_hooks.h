// How a distributed run plugs into wan::generate: the velocity of each step comes from the parallel
// DiT, and only the output rank saves, decodes and writes. Internal (torch types).
#pragma once
#include <functional>
#include <string>

#include "pipeline/text_to_video.h"
#include "wan/generation.h"

namespace wan {

struct RankHooks {
  // Called once the DiT is loaded; returns the step velocity for this run.
  std::function<VelocityFn(WanModel& dit, const TextContexts& text)> make_velocity;
  bool output_rank = true;  // saves the latent, decodes and writes the outputs
  std::string world_json;   // the distributed config recorded in the sidecar (empty: one process)
};

GenerationResult generate_with_hooks(const GenerationRequest& request, const ProgressFn& progress, const RankHooks& hooks);

}  // namespace wan
