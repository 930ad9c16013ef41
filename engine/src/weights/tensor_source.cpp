#include "weights/tensor_source.h"

namespace wan {

torch::Tensor TensorSource::load(const std::string& name, torch::ScalarType dtype, torch::Device device) const {
  torch::Tensor src = view(name);
  // Always copy: the result must not alias the mapping.
  return src
      .to(torch::TensorOptions().dtype(dtype).device(device), /*non_blocking=*/false,
          /*copy=*/true)
      .contiguous();
}

torch::Tensor TensorSource::flat_range(const std::string& name, std::int64_t offset, std::int64_t count) const {
  return view(name).reshape({-1}).narrow(0, offset, count);
}

std::optional<Float8Weight> TensorSource::float8_weight(const std::string& name) const {
  const StoredDType d = info(name).dtype;
  if (d != StoredDType::kF8E4M3 && d != StoredDType::kF8E5M2) return std::nullopt;
  return Float8Weight{view(name), torch::Tensor()};
}

std::string TensorSource::stored_type_name(const std::string& name) const { return safetensors_name(info(name).dtype); }

std::int64_t TensorSource::stored_bytes(const std::string& name) const {
  const TensorInfo& ti = info(name);
  std::int64_t n = 1;
  for (std::int64_t d : ti.shape) n *= d;
  return n * static_cast<std::int64_t>(element_size_bytes(ti.dtype));
}

std::int64_t TensorSource::total_bytes() const {
  std::int64_t total = 0;
  for (const std::string& name : names()) total += stored_bytes(name);
  return total;
}

std::int64_t TensorSource::parameter_count() const {
  std::int64_t n = 0;
  for (const std::string& name : names()) {
    if (name == "spiece_model") continue;  // a tokenizer embedded as bytes, not a parameter
    std::int64_t numel = 1;
    for (std::int64_t d : info(name).shape) numel *= d;
    n += numel;
  }
  return n;
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace wan
