// Flow-matching timestep schedules (Wan2.1 fm_solvers*.py; LightX2V's step-distill scheduler): the sigmas
// the sampler integrates over and the timesteps the DiT is conditioned on.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "wan/generation.h"  // SamplerKind, parse_sampler, sampler_name

namespace wan {

struct SigmaSchedule {
  // [N]: what the DiT receives. UniPC and DPM++: int64(sigma * 1000), truncated (whole numbers); the
  // distill schedule: float32(sigma * 1000), fractional (937.5, 833.33...).
  std::vector<double> timesteps;
  std::vector<float> sigmas;  // [N + 1]: float32 sigmas, the last one 0; what the solver uses
  int steps() const { return static_cast<int>(timesteps.size()); }
};

// UniPC: linspace(sigma_max = float32(0.999), 0, N + 1)[:N], then shifted s*x / (1 + (s-1)*x).
SigmaSchedule unipc_schedule(int steps, double shift, int num_train_timesteps = 1000);
// DPM++: linspace(1, 0, N + 1)[:N], shifted (get_sampling_sigmas); the first sigma is exactly 1.
SigmaSchedule dpmpp_schedule(int steps, double shift, int num_train_timesteps = 1000);
// Step-distilled models (LightX2V lightx2v/models/schedulers/wan/step_distill/scheduler.py,
// WanStepDistillScheduler.set_denoising_timesteps): the table s = torch.linspace(1, 0, 1001)[:-1] in
// float32, shifted s' = shift * s / (1 + (shift - 1) * s) in float32, timesteps s' * 1000; step k takes
// entry 1000 - step_list[k]. step_list: integers in 1..1000, strictly decreasing (the published 4-step
// models: {1000, 750, 500, 250} with shift 5). Throws wan::Error(kInvalidArgument) naming the bad entry.
SigmaSchedule distill_schedule(const std::vector<int>& step_list, double shift);
// The distill step list for `steps` steps when none is given: 1000 - k * 1000 / steps (rounded down),
// so 4 steps give the published {1000, 750, 500, 250}.
std::vector<int> default_denoising_step_list(int steps);
// kDistill takes `step_list` (empty: default_denoising_step_list(steps)); the others ignore it.
SigmaSchedule make_schedule(SamplerKind kind, int steps, double shift, const std::vector<int>& step_list = {});

}  // namespace wan
