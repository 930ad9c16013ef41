#include "pipeline/latent_preview.h"

#include <torch/torch.h>

#include <algorithm>

#include "wan/error.h"

namespace wan {
namespace {

// Latent channel -> RGB weights and bias for Wan2.1's VAE latents, as ComfyUI's preview uses them
// (comfy/latent_formats.py, class Wan21): an empirical least-squares fit, good enough to see shapes
// and colours form while sampling.
const float kRgbFactors[16][3] = {
    {-0.1299f, -0.1692f, 0.2932f},  {0.0671f, 0.0406f, 0.0442f},  {0.3568f, 0.2548f, 0.1747f},
    {0.0372f, 0.2344f, 0.1420f},    {0.0313f, 0.0189f, -0.0328f}, {0.0296f, -0.0956f, -0.0665f},
    {-0.3477f, -0.4059f, -0.2925f}, {0.0166f, 0.1902f, 0.1975f},  {-0.0412f, 0.0267f, -0.1364f},
    {-0.1293f, 0.0740f, 0.1636f},   {0.0680f, 0.3019f, 0.1128f},  {0.0032f, 0.0581f, 0.0639f},
    {-0.1251f, 0.0927f, 0.1699f},   {0.0060f, -0.0633f, 0.0005f}, {0.3477f, 0.2275f, 0.2950f},
    {0.1984f, 0.0913f, 0.1861f}};
const float kRgbBias[3] = {-0.1835f, -0.0868f, -0.3360f};

}  // namespace

PreviewImage latent_preview(const torch::Tensor& latent, int step, int total, int max_side) {
  if (latent.dim() != 4 || latent.size(0) != 16)
    throw Error(ErrorCode::kInvalidArgument, "latent preview expects a latent [16, F, h, w]");
  torch::NoGradGuard no_grad;
  // [16, h, w] -> [h, w, 16] @ [16, 3] -> [h, w, 3]
  const torch::Tensor frame = latent.select(1, latent.size(1) / 2).to(torch::kCPU, torch::kFloat32);
  const torch::Tensor factors = torch::from_blob(const_cast<float*>(&kRgbFactors[0][0]), {16, 3}, torch::kFloat32);
  const torch::Tensor bias = torch::from_blob(const_cast<float*>(kRgbBias), {3}, torch::kFloat32);
  torch::Tensor rgb = torch::matmul(frame.permute({1, 2, 0}), factors) + bias;
  const std::int64_t h = rgb.size(0), w = rgb.size(1);
  const std::int64_t stride = (std::max(h, w) + max_side - 1) / max_side;
  if (stride > 1) {
    // [1, 3, h, w] area-averaged by `stride`
    rgb = torch::avg_pool2d(rgb.permute({2, 0, 1}).unsqueeze(0), {stride, stride}, {stride, stride}, {0, 0}, true)
              .squeeze(0)
              .permute({1, 2, 0});
  }
  const torch::Tensor bytes = ((rgb.clamp(-1, 1) + 1) * 127.5).round().to(torch::kUInt8).contiguous();
  PreviewImage out;
  out.step = step;
  out.total = total;
  out.height = static_cast<std::int32_t>(bytes.size(0));
  out.width = static_cast<std::int32_t>(bytes.size(1));
  out.rgb.assign(bytes.data_ptr<std::uint8_t>(), bytes.data_ptr<std::uint8_t>() + bytes.numel());
  return out;
}

}  // namespace wan
