#include "weights/scaled_fp8.h"

#include <torch/torch.h>

#include "wan/error.h"

namespace wan {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string stem_of(const std::string& name, const std::string& suffix) {
  return name.substr(0, name.size() - suffix.size());
}

bool is_marker(const std::string& name) { return name == "scaled_fp8" || ends_with(name, ".scaled_fp8"); }

bool is_float8(StoredDType d) { return d == StoredDType::kF8E4M3 || d == StoredDType::kF8E5M2; }

}  // namespace

bool has_fp8_scales(const TensorSource& source) {
  for (const std::string& n : source.names())
    if (ends_with(n, ".scale_weight") || ends_with(n, ".weight_scale") || is_marker(n)) return true;
  return false;
}

TensorSourcePtr with_fp8_scales_applied(TensorSourcePtr source) {
  if (!has_fp8_scales(*source)) return source;
  return std::make_shared<ScaledFp8Source>(std::move(source));
}

ScaledFp8Source::ScaledFp8Source(TensorSourcePtr inner) : inner_(std::move(inner)) {
  const auto corrupt = [&](const std::string& what) { return Error(ErrorCode::kCorruptFile, path() + ": " + what); };
  std::vector<std::string> unscaled_float8;
  bool marked = false;  // ComfyUI's marker: every float8 weight of this file has a scale
  for (const std::string& n : inner_->names()) {
    marked = marked || is_marker(n);
    if (is_marker(n) || ends_with(n, ".scale_input") || ends_with(n, ".input_scale")) continue;
    std::string weight;
    if (ends_with(n, ".scale_weight")) weight = stem_of(n, ".scale_weight") + ".weight";
    if (ends_with(n, ".weight_scale")) weight = stem_of(n, ".weight_scale") + ".weight";
    if (weight.empty()) {
      names_.push_back(n);
      visible_.emplace(n, true);
      continue;
    }
    if (!inner_->contains(weight)) throw corrupt("scale '" + n + "' has no weight '" + weight + "' beside it");
    if (!scale_of_.emplace(weight, n).second)
      throw corrupt("weight '" + weight + "' has two scales ('" + scale_of_[weight] + "' and '" + n + "')");
    const TensorInfo& w = inner_->info(weight);
    const TensorInfo& s = inner_->info(n);
    if (is_float8(s.dtype)) throw corrupt("scale '" + n + "' is stored in float8: scales are float32");
    const std::vector<std::int64_t>& ws = w.shape;
    const std::vector<std::int64_t>& ss = s.shape;
    std::int64_t numel = 1;
    for (std::int64_t d : ss) numel *= d;
    const bool scalar = numel == 1;
    const bool per_row = !ws.empty() && ((ss.size() == 1 && ss[0] == ws[0]) ||
                                         (ss.size() == 2 && ss[0] == ws[0] && ss[1] == 1 && ws.size() >= 2));
    // One per block of each row: [out, blocks, 1], or [out, blocks] with more than one block.
    const bool per_block = ws.size() == 2 && ss.size() >= 2 && ss[0] == ws[0] && ss[1] > 0 && ws[1] % ss[1] == 0 &&
                           ((ss.size() == 3 && ss[2] == 1) || (ss.size() == 2 && ss[1] > 1));
    if (!scalar && !per_row && !per_block)
      throw corrupt("scale '" + n + "' has shape " + shape_text(ss) + ", which does not fit weight '" + weight + "' " +
                    shape_text(ws) +
                    " (one per tensor [] or [1], per output row [out] or [out, 1], or per block of a "
                    "row [out, blocks] or [out, blocks, 1])");
    // Scales are few and small: read them now. A NaN or infinite scale turns the whole video to NaN; a
    // zero (or negative) one zeroes (or flips) the layer: quantizers write positive max-abs scales.
    const torch::Tensor scale = inner_->view(n).to(torch::kFloat32);
    if (!torch::isfinite(scale).all().item<bool>())
      throw corrupt("scale '" + n + "' holds NaN or infinite values; the file is damaged");
    if (!(scale > 0).all().item<bool>())
      throw corrupt("scale '" + n + "' holds zero or negative values; the file is damaged");
  }
  for (const std::string& n : names_)
    if (is_float8(inner_->info(n).dtype) && !scale_of_.count(n) && ends_with(n, ".weight"))
      unscaled_float8.push_back(n);
  if (!unscaled_float8.empty() && (!scale_of_.empty() || marked))
    throw corrupt("float8 weight '" + unscaled_float8.front() + "' has no scale (" +
                  std::to_string(unscaled_float8.size()) +
                  (unscaled_float8.size() == 1 ? " such weight" : " such weights") + ") while " +
                  (scale_of_.empty() ? std::string("the file is marked scaled_fp8")
                                     : std::to_string(scale_of_.size()) + " others have one") +
                  ": the file is damaged or was written by a tool that dropped scales; without them the weights "
                  "would be read wrong");
}

const std::string& ScaledFp8Source::checked(const std::string& name) const {
  if (!visible_.count(name)) throw Error(ErrorCode::kModelMismatch, path() + ": no tensor named '" + name + "'");
  return name;
}

torch::Tensor dequantize_float8(const torch::Tensor& q_stored, const torch::Tensor& scale) {
  const torch::Tensor q = q_stored.to(torch::kFloat32);
  if (!scale.defined()) return q;
  const torch::Tensor s = scale.to(torch::kFloat32);
  if (s.numel() == 1) return q * s.reshape({});
  if (s.dim() == 3 || (s.dim() == 2 && s.size(1) > 1))  // one scale per block of each row
    return (q.view({q.size(0), s.size(1), -1}) * s.reshape({s.size(0), s.size(1), 1})).view_as(q);
  std::vector<std::int64_t> per_row(static_cast<std::size_t>(q.dim()), 1);
  per_row[0] = q.size(0);
  return q * s.reshape(per_row);
}

torch::Tensor ScaledFp8Source::view(const std::string& name) const {
  const torch::Tensor stored = inner_->view(checked(name));
  const auto it = scale_of_.find(name);
  if (it == scale_of_.end()) return stored;
  return dequantize_float8(stored, inner_->view(it->second));
}

torch::Tensor ScaledFp8Source::flat_range(const std::string& name, std::int64_t offset, std::int64_t count) const {
  const auto it = scale_of_.find(checked(name));
  if (it == scale_of_.end()) return inner_->flat_range(name, offset, count);
  const torch::Tensor q = inner_->view(name);
  const torch::Tensor scale = inner_->view(it->second);
  if (q.dim() == 0 || count <= 0) return dequantize_float8(q, scale).reshape({-1}).narrow(0, offset, count);
  const std::int64_t row = q.numel() / std::max<std::int64_t>(1, q.size(0));
  const std::int64_t r0 = offset / row, r1 = (offset + count + row - 1) / row;
  // The scale's rows go with the weight's (one per tensor: the same scalar).
  const torch::Tensor s = scale.numel() == 1 ? scale : scale.narrow(0, r0, r1 - r0);
  return dequantize_float8(q.narrow(0, r0, r1 - r0), s).reshape({-1}).narrow(0, offset - r0 * row, count);
}

std::optional<Float8Weight> ScaledFp8Source::float8_weight(const std::string& name) const {
  const auto it = scale_of_.find(checked(name));
  if (it == scale_of_.end() || !is_float8(inner_->info(name).dtype)) return TensorSource::float8_weight(name);
  return Float8Weight{inner_->view(name), inner_->view(it->second).to(torch::kFloat32)};
}

}  // namespace wan
