#include "sampling/schedule.h"

#include <torch/torch.h>

#include <cctype>
#include <cmath>

#include "wan/error.h"

namespace wan {

SamplerKind parse_sampler(const std::string& name) {
  if (name == "unipc") return SamplerKind::kUniPC;
  if (name == "dpm++" || name == "dpmpp") return SamplerKind::kDpmPlusPlus;
  if (name == "distill") return SamplerKind::kDistill;
  throw Error(ErrorCode::kInvalidArgument, "unknown sampler '" + name + "': use unipc, dpm++ or distill");
}

const char* sampler_name(SamplerKind kind) {
  switch (kind) {
    case SamplerKind::kUniPC:
      return "unipc";
    case SamplerKind::kDpmPlusPlus:
      return "dpm++";
    case SamplerKind::kDistill:
      return "distill";
  }
  return "unipc";
}

bool looks_step_distilled(const std::string& path) {
  std::string name = path.substr(path.find_last_of('/') == std::string::npos ? 0 : path.find_last_of('/') + 1);
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* word : {"distill", "lightx2v", "4step", "4-step", "4_step", "causvid", "lightning"})
    if (name.find(word) != std::string::npos) return true;
  return false;
}

namespace {

// numpy.linspace(start, stop, n + 1)[:n]: start + i * step with step = (stop - start) / n, in float64.
std::vector<double> linspace_head(double start, double stop, int n) {
  std::vector<double> out(n);
  const double step = (stop - start) / n;
  for (int i = 0; i < n; ++i) out[i] = i * step + start;
  return out;
}

SigmaSchedule shifted(std::vector<double> sigma, double shift, int num_train_timesteps) {
  SigmaSchedule s;
  for (double& x : sigma) {
    x = shift * x / (1 + (shift - 1) * x);
    // Truncation, as .to(int64); whole numbers, kept as double for the distill schedule's sake.
    s.timesteps.push_back(static_cast<double>(static_cast<std::int64_t>(x * num_train_timesteps)));
    s.sigmas.push_back(static_cast<float>(x));
  }
  s.sigmas.push_back(0.0f);  // final_sigmas_type = "zero"
  return s;
}

void check(int steps, double shift) {
  if (steps < 1)
    throw Error(ErrorCode::kInvalidArgument, "steps must be at least 1 (got " + std::to_string(steps) + ")");
  if (!std::isfinite(shift) || shift <= 0)
    throw Error(ErrorCode::kInvalidArgument, "shift must be a finite number > 0 (got " + std::to_string(shift) + ")");
}

}  // namespace

SigmaSchedule unipc_schedule(int steps, double shift, int num_train_timesteps) {
  check(steps, shift);
  // The scheduler's training sigmas end at 1 - 1/1000 in float32; that value, widened, is sigma_max.
  const double sigma_max = static_cast<double>(static_cast<float>(1.0 - 1.0 / num_train_timesteps));
  return shifted(linspace_head(sigma_max, 0.0, steps), shift, num_train_timesteps);
}

SigmaSchedule dpmpp_schedule(int steps, double shift, int num_train_timesteps) {
  check(steps, shift);
  return shifted(linspace_head(1.0, 0.0, steps), shift, num_train_timesteps);
}

std::vector<int> default_denoising_step_list(int steps) {
  check(steps, 1.0);
  if (steps > 1000)
    throw Error(ErrorCode::kInvalidArgument,
                "the distill sampler has 1000 timesteps: at most 1000 steps (got " + std::to_string(steps) + ")");
  std::vector<int> out;
  for (int k = 0; k < steps; ++k) out.push_back(1000 - k * 1000 / steps);
  return out;
}

SigmaSchedule distill_schedule(const std::vector<int>& step_list, double shift) {
  check(static_cast<int>(step_list.size()), shift);
  constexpr int kNumTrainTimesteps = 1000;
  for (std::size_t k = 0; k < step_list.size(); ++k) {
    const int x = step_list[k];
    if (x < 1 || x > kNumTrainTimesteps)
      throw Error(ErrorCode::kInvalidArgument, "--denoising-step-list: " + std::to_string(x) +
                                                   " is outside 1..1000 (the entries are timesteps of the "
                                                   "1000-step training schedule, e.g. 1000,750,500,250)");
    if (k > 0 && x >= step_list[k - 1])
      throw Error(ErrorCode::kInvalidArgument, "--denoising-step-list: " + std::to_string(x) + " after " +
                                                   std::to_string(step_list[k - 1]) +
                                                   ": the entries must go down (from noise to picture)");
  }
  // float32 tensors, as the reference computes them (torch.linspace's own halves-from-both-ends rule).
  const torch::Tensor table =
      torch::linspace(1.0, 0.0, kNumTrainTimesteps + 1, torch::kFloat32).slice(0, 0, kNumTrainTimesteps);
  const torch::Tensor sigmas = table.mul(shift).div(table.mul(shift - 1).add(1));
  const torch::Tensor timesteps = sigmas.mul(kNumTrainTimesteps);
  SigmaSchedule s;
  for (int x : step_list) {
    s.sigmas.push_back(sigmas[kNumTrainTimesteps - x].item<float>());
    s.timesteps.push_back(static_cast<double>(timesteps[kNumTrainTimesteps - x].item<float>()));
  }
  s.sigmas.push_back(0.0f);
  return s;
}

SigmaSchedule make_schedule(SamplerKind kind, int steps, double shift, const std::vector<int>& step_list) {
  switch (kind) {
    case SamplerKind::kUniPC:
      return unipc_schedule(steps, shift);
    case SamplerKind::kDpmPlusPlus:
      return dpmpp_schedule(steps, shift);
    case SamplerKind::kDistill:
      return distill_schedule(step_list.empty() ? default_denoising_step_list(steps) : step_list, shift);
  }
  return unipc_schedule(steps, shift);
}

}  // namespace wan
