// How a distributed run plugs into wan::generate: the velocity of each step comes from the parallel
// DiT, and only the output rank saves, decodes and writes. Internal (torch types).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "pipeline/text_to_video.h"
#include "wan/generation.h"
#include "wan/job.h"

namespace wan {

struct RankHooks {
  // Called once the DiT is loaded (Wan2.2 A14B: once per expert); returns the step velocity for this run
  // (image: image-to-video's conditioning, empty for text-to-video; guidance: that DiT's scale).
  std::function<VelocityFn(WanModel& dit, const TextContexts& text, const ImageContext& image, double guidance)>
      make_velocity;
  ShardingLoader dit_sharding, t5_sharding;  // dit_fsdp / t5_fsdp (empty: full weights)
  bool output_rank = true;                   // saves the latent, decodes and writes the outputs
  // Without --save-latent, write the latent to the rescue path before decoding and remove it once the
  // outputs are written, so a decode that dies (even killed) never loses the sampling.
  bool save_latent_before_decode = false;
  // After the sampling, before anything is written: every rank confirms it finished (a barrier), so
  // the output rank never writes a video while another rank failed or hangs (it would then be
  // reported as failed with a complete-looking output beside it). Empty: a world of one.
  std::function<void()> after_sampling;
  StepObserver on_step;                             // after each sampling step, with the current latent (live preview)
  std::function<void(const std::string&)> on_note;  // a remark for the user (a truncated prompt); empty: none
  int rank = 0;                                     // for WAN_TEST_OOM's rank filter (core/out_of_memory.h)
};

// Where a sampled latent is kept when decoding or writing fails: "<output stem>.latent.safetensors".
std::string rescue_latent_path(const GenerationRequest& request);

// Where it goes when that folder cannot be written: $XDG_STATE_HOME/wan-studio/latents (by default
// ~/.local/state/wan-studio/latents), else $TMPDIR (or /tmp). The message that reports it names the file.
std::vector<std::string> latent_fallback_dirs();

// The sidecar's format name (its fields: generate.cpp settings_json; read back by job_from_sidecar).
constexpr const char* kSidecarFormat = "wan-studio-sidecar/2";

// One generation of `job.request` with `job.config`'s placements (t5_cpu), the distributed parts
// plugged in through `hooks`; the sidecar records the request as it ran and the config.
GenerationResult generate_with_hooks(const Job& job, const ProgressFn& progress, const RankHooks& hooks);

}  // namespace wan
