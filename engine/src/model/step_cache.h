// Step caching inside the DiT forward (TeaCache, MagCache; settings and rules: wan/generation.h
// StepCacheSettings). The denoise loop announces each step; the DiT's run_blocks asks the cache whether
// to run its blocks or to add the residual (blocks' output - input) cached for the same pass at the last
// computed step. One decision per step covers every forward of the step (conditional and unconditional),
// and it is a function of values every rank holds alike (the step index, the published curve, the
// step's modulation vector e0), so no rank skips a block whose collectives another rank runs.
// Not thread-safe: one sampling loop owns it.
#pragma once
#include <torch/types.h>

#include <functional>
#include <string>
#include <vector>

#include "wan/generation.h"

namespace wan {

struct DitConditioning;

// What a run's cache decides from: chosen by make_plan for the model and task (pipeline/plan.cpp).
struct StepCacheProfile {
  StepCacheSettings settings;
  // Whose published numbers these are, e.g. "TeaCache coefficients of Wan2.1 T2V-1.3B".
  std::string source;
  // TeaCache: the rescaling polynomial of the relative L1 change, highest degree first (np.poly1d's order;
  // TeaCache4Wan2.1/teacache_generate.py, use_ret_steps).
  std::vector<double> coefficients;
  // MagCache: the magnitude ratio of each step, conditional and unconditional pass, already interpolated
  // to the run's step count (MagCache's nearest_interp).
  std::vector<double> ratio_cond, ratio_uncond;
  std::vector<bool> never_skip;  // per step: warm-up steps (and Wan2.2 A14B's retention windows)
  std::string note;              // for the user when the settings can skip nothing (warm-up >= steps)
};

// The model and run the published numbers are chosen for.
struct StepCacheModel {
  std::int64_t dim = 0;            // DiT width: 1536 (1.3B), 3072 (5B), 5120 (14B); others take the nearest's
  bool i2v = false;                // image-to-video (the run's mode for TI2V-5B)
  bool ti2v = false, moe = false;  // Wan2.2 TI2V-5B; Wan2.2 A14B
  std::int64_t area = 0;           // width x height: I2V-14B 480P's numbers up to 1.5 x 832x480, 720P's above
  int steps = 0;
  int high_noise_steps = 0;  // Wan2.2 A14B: steps of the high-noise expert (they come first)
};
// TeaCache: the use_ret_steps coefficients of Wan2.1 T2V-1.3B / T2V-14B / I2V-14B-480P / 720P
// (TeaCache4Wan2.1/teacache_generate.py); warm-up 5 steps by default; Wan2.2 refused (kInvalidArgument,
// no published coefficients). MagCache: the curve of the model (sampling/magcache_curves.h) resampled
// to `steps`; warm-up 20 % of the steps by default (retention_ratio 0.2); Wan2.2 A14B as
// MagCache4Wan2.2: text-to-video keeps a window at the start of each expert's steps, image-to-video
// never skips a high-noise step. `source` names the model whose numbers these are.
StepCacheProfile make_step_cache_profile(const StepCacheSettings& settings, const StepCacheModel& model);

class StepCache {
 public:
  explicit StepCache(StepCacheProfile profile);

  // Before step `step`'s forwards (0-based). `passes`: 2 with classifier-free guidance, 1 without (the
  // MagCache accumulators that count). `model`: the DiT that runs the step; a change (Wan2.2 A14B's expert
  // switch) drops the cached residuals, so the next step computes.
  void begin_step(int step, int passes, const void* model);
  // In place of the blocks: blocks(x), or x + the residual cached for this forward's pass (the n-th forward
  // since begin_step). The step's first forward decides (TeaCache reads cond.e0's first row). A pass with no
  // residual yet computes. Throws wan::Error(kInternal) when called before begin_step.
  torch::Tensor run(const torch::Tensor& x, const DitConditioning& cond,
                    const std::function<torch::Tensor(const torch::Tensor&)>& blocks);

  // Over ranks: called at each step's first forward with this rank's proposal, on every rank; returns
  // true only when every rank proposed skipping (the distributed runtime all-reduces the flag). Empty: a
  // world of one. Their proposals already agree on identical hardware (the rules read the step index, the
  // curve and e0, which every rank computes alike); the agreement makes a last-bit difference of e0
  // between GPUs of different kinds unable to split the ranks.
  std::function<bool(bool)> agree;

  const StepCacheProfile& profile() const { return profile_; }
  const std::vector<int>& skipped_steps() const { return skipped_steps_; }  // 0-based, ascending
  std::int64_t skipped_forwards() const { return skipped_forwards_; }
  std::int64_t computed_forwards() const { return computed_forwards_; }

 private:
  bool propose(const DitConditioning& cond);  // this rank's view; sets eligible_
  void settle(bool skipped);                  // the agreed outcome resets the accumulators when computed

  StepCacheProfile profile_;
  int step_ = -1, passes_ = 1, forwards_in_step_ = 0;
  const void* model_ = nullptr;
  bool skip_ = false, eligible_ = false;
  std::vector<torch::Tensor> residual_;  // per pass slot
  // TeaCache state (teacache_generate.py: previous_e0, accumulated_rel_l1_distance).
  torch::Tensor previous_e0_;
  double accumulated_ = 0;
  // MagCache state per pass (magcache_generate.py: accumulated_ratio, accumulated_err, accumulated_steps).
  double ratio_[2] = {1, 1}, error_[2] = {0, 0};
  int steps_[2] = {0, 0};
  std::vector<int> skipped_steps_;
  std::int64_t skipped_forwards_ = 0, computed_forwards_ = 0;
};

// MagCache's nearest_interp: `curve` (one pass's ratios over its calibrated steps) resampled to `steps`
// entries, index round(k * (n - 1) / (steps - 1)) with numpy's round-half-to-even; one step takes the last.
std::vector<double> magcache_interpolate(const std::vector<double>& curve, int steps);

}  // namespace wan
