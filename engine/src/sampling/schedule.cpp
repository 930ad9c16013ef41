#include "sampling/schedule.h"

#include <cmath>

#include "wan/error.h"

namespace wan {

SamplerKind parse_sampler(const std::string& name) {
  if (name == "unipc") return SamplerKind::kUniPC;
  if (name == "dpm++" || name == "dpmpp") return SamplerKind::kDpmPlusPlus;
  throw Error(ErrorCode::kInvalidArgument, "unknown sampler '" + name + "': use unipc or dpm++");
}

const char* sampler_name(SamplerKind kind) { return kind == SamplerKind::kUniPC ? "unipc" : "dpm++"; }

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
    s.timesteps.push_back(static_cast<std::int64_t>(x * num_train_timesteps));  // truncation, as .to(int64)
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

SigmaSchedule make_schedule(SamplerKind kind, int steps, double shift) {
  return kind == SamplerKind::kUniPC ? unipc_schedule(steps, shift) : dpmpp_schedule(steps, shift);
}

}  // namespace wan
