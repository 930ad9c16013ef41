#include "model/step_cache.h"

#include <algorithm>
#include <cfenv>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "model/dit.h"
#include "sampling/magcache_curves.h"
#include "wan/error.h"

namespace wan {

StepCache::StepCache(StepCacheProfile profile) : profile_(std::move(profile)) {}

void StepCache::begin_step(int step, int passes, const void* model) {
  if (model != model_) {
    residual_.clear();  // another expert: its blocks' residuals are not these
    previous_e0_ = torch::Tensor();
    model_ = model;
  }
  step_ = step;
  passes_ = std::max(1, std::min(2, passes));
  forwards_in_step_ = 0;
  skip_ = false;
}

bool StepCache::propose(const DitConditioning& cond) {
  const StepCacheSettings& s = profile_.settings;
  const bool warm_up = step_ >= static_cast<int>(profile_.never_skip.size()) || profile_.never_skip[step_];
  eligible_ = false;
  bool skip = false;
  if (s.kind == StepCacheKind::kTeaCache) {
    // teacache_forward: the change of e0 since the previous step, rescaled and accumulated.
    const torch::Tensor e0 = cond.e0.select(0, 0).to(torch::kFloat32);
    if (warm_up || !previous_e0_.defined()) {
      accumulated_ = 0;
    } else {
      eligible_ = true;
      const double rel = ((e0 - previous_e0_).abs().mean() / previous_e0_.abs().mean()).item<double>();
      double rescaled = 0;
      for (double c : profile_.coefficients) rescaled = rescaled * rel + c;  // np.poly1d, Horner
      accumulated_ += rescaled;
      skip = s.threshold > 0 && accumulated_ < s.threshold;  // threshold 0: nothing is skipped
    }
    previous_e0_ = e0.clone();
  } else if (s.kind == StepCacheKind::kMagCache && !warm_up && s.threshold > 0) {
    // magcache_forward, for each pass that runs; the step is skipped only when every pass may be.
    eligible_ = true;
    skip = true;
    for (int p = 0; p < passes_; ++p) {
      const std::vector<double>& curve = p == 0 ? profile_.ratio_cond : profile_.ratio_uncond;
      ratio_[p] *= curve.at(static_cast<std::size_t>(step_));
      steps_[p] += 1;
      error_[p] += std::abs(1 - ratio_[p]);
      skip = skip && error_[p] < s.threshold && steps_[p] <= s.max_skips;
    }
  }
  return skip;
}

void StepCache::settle(bool skipped) {
  // A step that could have been skipped and was computed starts the accumulation again (both rules).
  if (!eligible_ || skipped) return;
  accumulated_ = 0;
  for (int p = 0; p < 2; ++p) ratio_[p] = 1, error_[p] = 0, steps_[p] = 0;
}

torch::Tensor StepCache::run(const torch::Tensor& x, const DitConditioning& cond,
                             const std::function<torch::Tensor(const torch::Tensor&)>& blocks) {
  if (step_ < 0) throw Error(ErrorCode::kInternal, "StepCache::run before begin_step");
  const int slot = forwards_in_step_++;
  if (residual_.size() <= static_cast<std::size_t>(slot)) residual_.resize(slot + 1);
  torch::Tensor& residual = residual_[slot];
  if (slot == 0) {
    // Every step proposes (the rules' state follows every step); nothing cached yet means computing; over
    // ranks the step is skipped only when every rank proposes it (one all-reduce of a flag).
    skip_ = propose(cond) && residual.defined();
    if (agree) skip_ = agree(skip_);
    settle(skip_);
    if (skip_) skipped_steps_.push_back(step_);
  }
  if (skip_ && residual.defined() && residual.sizes() == x.sizes()) {
    ++skipped_forwards_;
    return x + residual;
  }
  ++computed_forwards_;
  torch::Tensor out = blocks(x);
  residual = out - x;
  return out;
}

namespace {

// TeaCache4Wan2.1/teacache_generate.py (use_ret_steps): the rescaling polynomials, highest degree first.
const double kTeaT2V1_3B[] = {-5.21862437e+04, 9.23041404e+03, -5.28275948e+02, 1.36987616e+01, -4.99875664e-02};
const double kTeaT2V14B[] = {-3.03318725e+05, 4.90537029e+04, -2.65530556e+03, 5.87365115e+01, -3.15583525e-01};
const double kTeaI2V480P[] = {2.57151496e+05, -3.54229917e+04, 1.40286849e+03, -1.35890334e+01, 1.32517977e-01};
const double kTeaI2V720P[] = {8.10705460e+03, 2.13393892e+03, -3.72934672e+02, 1.66203073e+01, -4.17769401e-02};
constexpr int kTeaCacheWarmup = 5;          // ret_steps = 5 * 2 forwards
constexpr double kMagCacheRetention = 0.2;  // magcache_generate.py --retention_ratio

StepCacheProfile make_profile(const StepCacheSettings& settings, const StepCacheModel& m);
}  // namespace

StepCacheProfile make_step_cache_profile(const StepCacheSettings& settings, const StepCacheModel& m) {
  StepCacheProfile out = make_profile(settings, m);
  bool any = false;
  for (bool keep : out.never_skip) any = any || !keep;
  if (!any && settings.threshold > 0)
    out.note = "its warm-up covers all " + std::to_string(m.steps) +
               " steps, so nothing can be skipped: give a shorter warm-up (e.g. " +
               (settings.kind == StepCacheKind::kTeaCache ? "teacache:" : "magcache:") + "THRESHOLD:1)";
  return out;
}

namespace {
// The published numbers for this model and task. The published models are told apart by their DiT
// width (1.3B: 1536, 14B: 5120, 5B: 3072); a DiT of another width (the demo models) takes the nearest
// one's, with a note. The 480P and 720P I2V-14B checkpoints have the same shapes: the area decides.
StepCacheProfile make_profile(const StepCacheSettings& settings, const StepCacheModel& m) {
  StepCacheProfile out;
  out.settings = settings;
  const StepCacheSettings& s = out.settings;
  const int n = m.steps;
  const bool ti2v = m.ti2v;
  const std::int64_t dim = m.dim;
  const bool big = dim > 3072;
  const bool hd = m.area > 832 * 480 * 3 / 2;
  std::string model;
  std::string nearest;  // said when the DiT is none of the published models
  const auto nearest_note = [&](std::int64_t published_dim) {
    if (dim != published_dim)
      nearest = " (no published numbers for a DiT " + std::to_string(dim) + " wide: the nearest model's)";
  };

  if (s.kind == StepCacheKind::kTeaCache) {
    if (m.moe || ti2v)
      throw Error(ErrorCode::kInvalidArgument,
                  "--cache teacache: TeaCache publishes coefficients for Wan2.1 only (T2V 1.3B and 14B, I2V 480P and "
                  "720P); for Wan2.2 use --cache magcache:THRESHOLD (e.g. magcache:0.04)");
    const double* c = nullptr;
    if (!m.i2v) {
      model = big ? "Wan2.1 T2V-14B" : "Wan2.1 T2V-1.3B";
      c = big ? kTeaT2V14B : kTeaT2V1_3B;
      nearest_note(big ? 5120 : 1536);
    } else {
      model = hd ? "Wan2.1 I2V-14B-720P" : "Wan2.1 I2V-14B-480P";
      c = hd ? kTeaI2V720P : kTeaI2V480P;
      nearest_note(5120);
    }
    out.coefficients.assign(c, c + 5);
    out.source = "TeaCache coefficients of " + model + nearest;
    const int warmup = s.warmup.value_or(kTeaCacheWarmup);
    for (int i = 0; i < n; ++i) out.never_skip.push_back(i < warmup);
    return out;
  }
  // MagCache: the curve, interleaved (cond, uncond) per calibrated step after the padding [1, 1].
  namespace mc = magcache_curves;
  std::vector<double> curve;
  const auto take = [&](const auto& table, const char* name, std::int64_t published_dim) {
    curve.assign({1.0, 1.0});
    curve.insert(curve.end(), std::begin(table), std::end(table));
    model = name;
    nearest_note(published_dim);
  };
  if (m.moe)
    m.i2v ? take(mc::kWan22I2VA14B, "Wan2.2 I2V-A14B", 5120) : take(mc::kWan22T2VA14B, "Wan2.2 T2V-A14B", 5120);
  else if (ti2v)
    m.i2v ? take(mc::kWan22TI2VImage, "Wan2.2 TI2V-5B (image-to-video)", 3072)
          : take(mc::kWan22TI2VText, "Wan2.2 TI2V-5B (text-to-video)", 3072);
  else if (m.i2v)
    hd ? take(mc::kWan21I2V720P, "Wan2.1 I2V-14B-720P", 5120) : take(mc::kWan21I2V480P, "Wan2.1 I2V-14B-480P", 5120);
  else
    big ? take(mc::kWan21T2V14B, "Wan2.1 T2V-14B", 5120) : take(mc::kWan21T2V1_3B, "Wan2.1 T2V-1.3B", 1536);
  std::vector<double> cond, uncond;
  for (std::size_t i = 0; i + 1 < curve.size(); i += 2) {
    cond.push_back(curve[i]);
    uncond.push_back(curve[i + 1]);
  }
  out.ratio_cond = magcache_interpolate(cond, n);
  out.ratio_uncond = magcache_interpolate(uncond, n);
  out.source = "MagCache curve of " + model + nearest;
  // Warm-up (retention) windows, in the reference's forward counts (2 per step) for the conditional pass.
  const int high = m.high_noise_steps;  // Wan2.2 A14B: the high-noise expert's steps
  const double r = kMagCacheRetention;
  for (int i = 0; i < n; ++i) {
    bool keep = false;
    if (s.warmup) {
      const int w = *s.warmup;
      keep = !m.moe ? i < w : m.i2v ? i < high + w : (i < w || (i >= high && i < high + w));
    } else if (!m.moe) {
      keep = 2 * i < static_cast<int>(2 * n * r);
    } else if (m.i2v) {  // magcache_forward, mode i2v: nothing skipped while the high-noise expert runs
      keep = 2 * i < static_cast<int>(2 * high + (2 * n - 2 * high) * r);
    } else {  // t2v: a window at the start of each expert's steps
      keep =
          2 * i < static_cast<int>(2 * high * r) || (2 * high <= 2 * i && 2 * i <= (2 * n - 2 * high) * r + 2 * high);
    }
    out.never_skip.push_back(keep);
  }
  return out;
}
}  // namespace

std::vector<double> magcache_interpolate(const std::vector<double>& curve, int steps) {
  if (curve.empty() || steps < 1) return {};
  if (steps == 1) return {curve.back()};
  const double scale = static_cast<double>(curve.size() - 1) / (steps - 1);
  std::vector<double> out;
  const int mode = std::fegetround();
  std::fesetround(FE_TONEAREST);  // np.round: half to even
  for (int k = 0; k < steps; ++k) out.push_back(curve.at(static_cast<std::size_t>(std::nearbyint(k * scale))));
  std::fesetround(mode);
  return out;
}

}  // namespace wan

namespace wan {

std::string step_cache_name(const StepCacheSettings& s) {
  if (s.kind == StepCacheKind::kNone) return "none";
  const auto number = [](double v) {  // the shortest text that reads back as the same double
    char buf[64];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    return ec == std::errc() ? std::string(buf, end) : std::to_string(v);
  };
  std::string out = std::string(s.kind == StepCacheKind::kTeaCache ? "teacache:" : "magcache:") + number(s.threshold);
  if (s.warmup || (s.kind == StepCacheKind::kMagCache && s.max_skips != 2))
    out += ":" + (s.warmup ? std::to_string(*s.warmup) : std::string());
  if (s.kind == StepCacheKind::kMagCache && s.max_skips != 2) out += ":" + std::to_string(s.max_skips);
  return out;
}

StepCacheSettings parse_step_cache(const std::string& text) {
  const auto invalid = [&](const std::string& why) {
    return Error(ErrorCode::kInvalidArgument,
                 "--cache " + text + ": " + why +
                     " (give none, teacache:THRESHOLD[:WARMUP] or magcache:THRESHOLD[:WARMUP[:K]], e.g. "
                     "teacache:0.2 or magcache:0.12)");
  };
  StepCacheSettings s;
  if (text == "none" || text.empty()) return s;
  std::vector<std::string> parts;
  std::size_t from = 0;
  while (true) {
    const std::size_t colon = text.find(':', from);
    parts.push_back(text.substr(from, colon == std::string::npos ? std::string::npos : colon - from));
    if (colon == std::string::npos) break;
    from = colon + 1;
  }
  if (parts[0] == "teacache")
    s.kind = StepCacheKind::kTeaCache;
  else if (parts[0] == "magcache")
    s.kind = StepCacheKind::kMagCache;
  else
    throw invalid("unknown cache '" + parts[0] + "'");
  const std::size_t most = s.kind == StepCacheKind::kTeaCache ? 3 : 4;
  if (parts.size() < 2) throw invalid("the threshold is missing");
  if (parts.size() > most) throw invalid("too many fields");
  const auto whole = [&](const std::string& part, const char* what, int low) {
    int v = 0;
    const auto [ptr, ec] = std::from_chars(part.data(), part.data() + part.size(), v);
    if (part.empty() || ec != std::errc() || ptr != part.data() + part.size() || v < low)
      throw invalid(std::string(what) + " '" + part + "' is not a whole number from " + std::to_string(low) +
                    " to 2147483647");
    return v;
  };
  if (parts.size() == 3 && parts[2].empty()) throw invalid("the warm-up after the last ':' is missing");
  {
    const std::string& t = parts[1];
    char* end = nullptr;
    const double v = t.empty() ? NAN : std::strtod(t.c_str(), &end);
    if (t.empty() || end != t.c_str() + t.size() || !std::isfinite(v) || v < 0 ||
        t.find_first_not_of("0123456789.eE+-") != std::string::npos)
      throw invalid("the threshold '" + t + "' is not a number >= 0");
    s.threshold = v;
  }
  if (parts.size() > 2 && !parts[2].empty()) s.warmup = whole(parts[2], "the warm-up step count", 0);
  if (parts.size() > 3) s.max_skips = whole(parts[3], "K (skipped steps in a row)", 1);
  return s;
}

}  // namespace wan
