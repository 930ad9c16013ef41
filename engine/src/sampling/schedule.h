// Flow-matching timestep schedules (Wan2.1 fm_solvers*.py): the sigmas the sampler integrates over
// and the integer timesteps the DiT is conditioned on.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "wan/generation.h"  // SamplerKind, parse_sampler, sampler_name

namespace wan {

struct SigmaSchedule {
  std::vector<std::int64_t> timesteps;  // [N]: int64(sigma * 1000), truncated; what the DiT receives
  std::vector<float> sigmas;            // [N + 1]: float32 sigmas, the last one 0; what the solver uses
  int steps() const { return static_cast<int>(timesteps.size()); }
};

// UniPC: linspace(sigma_max = float32(0.999), 0, N + 1)[:N], then shifted s*x / (1 + (s-1)*x).
SigmaSchedule unipc_schedule(int steps, double shift, int num_train_timesteps = 1000);
// DPM++: linspace(1, 0, N + 1)[:N], shifted (get_sampling_sigmas); the first sigma is exactly 1.
SigmaSchedule dpmpp_schedule(int steps, double shift, int num_train_timesteps = 1000);
SigmaSchedule make_schedule(SamplerKind kind, int steps, double shift);

}  // namespace wan
