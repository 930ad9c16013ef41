#include "sampling/sampler.h"

#include <torch/torch.h>

#include <cmath>

#include "wan/error.h"

namespace wan {
namespace {

// Scalars follow the reference: float32 CPU tensors there, float here (alpha = 1 - sigma).
float lambda_of(float sigma) { return std::log(1.0f - sigma) - std::log(sigma); }

// UniPC with B(h) = expm1(-h) ("bh2"), solver_order 2, predict_x0, lower_order_final.
class UniPC final : public Sampler {
 public:
  using Sampler::Sampler;

  torch::Tensor step(const torch::Tensor& velocity, const torch::Tensor& sample_in) override {
    const int i = step_index_;
    const int n = schedule_.steps();
    if (i >= n) throw Error(ErrorCode::kInternal, "UniPC: step() called after the last step");
    // x0 prediction (flow_prediction): m = x - sigma_i * v.
    const torch::Tensor m = sample_in - sigma(i) * velocity;
    torch::Tensor sample = sample_in;
    if (i > 0 && last_sample_.defined()) sample = correct(m, sample, this_order_);
    m_prev_ = m_last_;
    m_last_ = m;
    const int order = std::min(2, n - i);                  // lower_order_final
    this_order_ = std::min(order, lower_order_nums_ + 1);  // warm-up
    last_sample_ = sample;
    torch::Tensor next = predict(sample, this_order_);
    lower_order_nums_ = std::min(lower_order_nums_ + 1, 2);
    ++step_index_;
    return next;
  }

 private:
  // UniP: x at sigma[i+1] from x at sigma[i] (m_last_ = m_i, m_prev_ = m_{i-1}).
  torch::Tensor predict(const torch::Tensor& x, int order) const {
    const int i = step_index_;
    const float sigma_t = sigma(i + 1), sigma_s0 = sigma(i);
    const float alpha_t = 1.0f - sigma_t;
    const float h = lambda_of(sigma_t) - lambda_of(sigma_s0);
    const float hh = -h;
    const float h_phi_1 = std::expm1(hh);
    const float b_h = std::expm1(hh);
    torch::Tensor x_t = (sigma_t / sigma_s0) * x - (alpha_t * h_phi_1) * m_last_;
    if (order == 2) {
      const float rk = (lambda_of(sigma(i - 1)) - lambda_of(sigma_s0)) / h;
      const torch::Tensor d1 = (m_prev_ - m_last_) / rk;
      x_t = x_t - (alpha_t * b_h) * (0.5f * d1);  // rhos_p = [0.5] for order 2
    }
    return x_t;
  }

  // UniC: corrects the sample at sigma[i] with the new model output m_t; m_last_ is still m_{i-1}.
  torch::Tensor correct(const torch::Tensor& m_t, const torch::Tensor& x_pred, int order) const {
    const int i = step_index_;
    const float sigma_t = sigma(i), sigma_s0 = sigma(i - 1);
    const float alpha_t = 1.0f - sigma_t;
    const float lambda_s0 = lambda_of(sigma_s0);
    const float h = lambda_of(sigma_t) - lambda_s0;
    const float hh = -h;
    const float h_phi_1 = std::expm1(hh);
    const float b_h = std::expm1(hh);
    const torch::Tensor& m0 = m_last_;
    const torch::Tensor d1_t = m_t - m0;
    torch::Tensor x_t = (sigma_t / sigma_s0) * last_sample_ - (alpha_t * h_phi_1) * m0;
    if (order == 1) return x_t - (alpha_t * b_h) * (0.5f * d1_t);
    // order 2: rks = [r1, 1]; R = [[1, 1], [r1, 1]]; b_k = h_phi_k * k! / B_h.
    const float r1 = (lambda_of(sigma(i - 2)) - lambda_s0) / h;
    const torch::Tensor d1 = (m_prev_ - m0) / r1;
    float h_phi_k = h_phi_1 / hh - 1.0f;
    const float b1 = h_phi_k * 1.0f / b_h;
    h_phi_k = h_phi_k / hh - 1.0f / 2.0f;
    const float b2 = h_phi_k * 2.0f / b_h;
    // Solve [[1, 1], [r1, 1]] rho = [b1, b2].
    const float det = 1.0f - r1;
    const float rho0 = (b1 - b2) / det;
    const float rho1 = (b2 - r1 * b1) / det;
    return x_t - (alpha_t * b_h) * (rho0 * d1 + rho1 * d1_t);
  }

  torch::Tensor m_last_, m_prev_, last_sample_;
  int this_order_ = 1;
  int lower_order_nums_ = 0;
};

// DPM-Solver++ (2M, midpoint); first order at step 0 and at the last step (final sigma 0).
class DpmPlusPlus final : public Sampler {
 public:
  using Sampler::Sampler;

  torch::Tensor step(const torch::Tensor& velocity, const torch::Tensor& sample_in) override {
    const int i = step_index_;
    const int n = schedule_.steps();
    if (i >= n) throw Error(ErrorCode::kInternal, "DPM++: step() called after the last step");
    const torch::Tensor sample = sample_in.to(torch::kFloat32);
    const torch::Tensor m0 = sample - sigma(i) * velocity;
    m_prev_ = m_last_;
    m_last_ = m0;
    const float sigma_t = sigma(i + 1), sigma_s0 = sigma(i);
    const float alpha_t = 1.0f - sigma_t;
    const float h = lambda_of(sigma_t) - lambda_of(sigma_s0);
    const float coeff = alpha_t * (std::exp(-h) - 1.0f);
    torch::Tensor x_t;
    const bool first_order = lower_order_nums_ < 1 || i == n - 1;
    if (first_order) {
      x_t = (sigma_t / sigma_s0) * sample - coeff * m0;
    } else {
      const float h_0 = lambda_of(sigma_s0) - lambda_of(sigma(i - 1));
      const float r0 = h_0 / h;
      const torch::Tensor d1 = (1.0f / r0) * (m0 - m_prev_);
      x_t = (sigma_t / sigma_s0) * sample - coeff * m0 - 0.5f * coeff * d1;
    }
    lower_order_nums_ = std::min(lower_order_nums_ + 1, 2);
    ++step_index_;
    return x_t.to(velocity.scalar_type());
  }

 private:
  torch::Tensor m_last_, m_prev_;
  int lower_order_nums_ = 0;
};

// Step-distilled models (LightX2V WanStepDistillScheduler.step_post): the flow-matching Euler step written
// through the x0 prediction, in float32: x0 = x - sigma_i * v, then x0 + v * sigma_{i+1} before the last
// step (the last returns x0). No history: each step stands alone.
class Distill final : public Sampler {
 public:
  using Sampler::Sampler;

  torch::Tensor step(const torch::Tensor& velocity, const torch::Tensor& sample_in) override {
    const int i = step_index_;
    const int n = schedule_.steps();
    if (i >= n) throw Error(ErrorCode::kInternal, "distill: step() called after the last step");
    const torch::Tensor v = velocity.to(torch::kFloat32);
    torch::Tensor x = sample_in.to(torch::kFloat32) - sigma(i) * v;
    if (i < n - 1) x = x + v * sigma(i + 1);
    ++step_index_;
    return x.to(sample_in.scalar_type());
  }
};

}  // namespace

std::unique_ptr<Sampler> make_sampler(SamplerKind kind, int steps, double shift, const std::vector<int>& step_list) {
  SigmaSchedule schedule = make_schedule(kind, steps, shift, step_list);
  switch (kind) {
    case SamplerKind::kUniPC:
      return std::make_unique<UniPC>(std::move(schedule));
    case SamplerKind::kDpmPlusPlus:
      return std::make_unique<DpmPlusPlus>(std::move(schedule));
    case SamplerKind::kDistill:
      return std::make_unique<Distill>(std::move(schedule));
  }
  return std::make_unique<UniPC>(std::move(schedule));
}

}  // namespace wan
