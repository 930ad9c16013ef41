// Flow-matching solvers, ported from Wan2.1's FlowUniPCMultistepScheduler (bh2, order 2, lower order at
// the end) and FlowDPMSolverMultistepScheduler (dpmsolver++, midpoint, order 2), and the Euler step of
// step-distilled models (LightX2V's WanStepDistillScheduler).
// Pure units: no model inside. The pipeline calls step() once per timestep with the guided velocity.
#pragma once
#include <torch/types.h>

#include <memory>

#include "sampling/schedule.h"

namespace wan {

class Sampler {
 public:
  explicit Sampler(SigmaSchedule schedule) : schedule_(std::move(schedule)) {}
  virtual ~Sampler() = default;
  // velocity: the model's (guided) flow prediction v; sample: x at the current sigma. Both float32,
  // same shape. Returns x at the next sigma. Advances step_index().
  virtual torch::Tensor step(const torch::Tensor& velocity, const torch::Tensor& sample) = 0;
  const SigmaSchedule& schedule() const { return schedule_; }
  int step_index() const { return step_index_; }
  // The timestep the DiT receives at the current step (whole for UniPC and DPM++; fractional for distill).
  double current_timestep() const { return schedule_.timesteps.at(step_index_); }

 protected:
  float sigma(int i) const { return schedule_.sigmas.at(i); }
  SigmaSchedule schedule_;
  int step_index_ = 0;
};

// `step_list`: the distill sampler's (make_schedule); ignored by the others. Throws as make_schedule.
std::unique_ptr<Sampler> make_sampler(SamplerKind kind, int steps, double shift,
                                      const std::vector<int>& step_list = {});

}  // namespace wan
