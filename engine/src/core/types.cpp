#include "wan/types.h"

#include <cstdlib>

#include "wan/error.h"

namespace wan {

const char* dtype_name(Dtype dtype) {
  switch (dtype) {
    case Dtype::kAuto:
      return "auto";
    case Dtype::kFloat32:
      return "fp32";
    case Dtype::kBFloat16:
      return "bf16";
    case Dtype::kFloat16:
      return "fp16";
  }
  return "?";
}

const char* dtype_long_name(Dtype dtype) {
  switch (dtype) {
    case Dtype::kAuto:
      return "auto";
    case Dtype::kFloat32:
      return "float32";
    case Dtype::kBFloat16:
      return "bfloat16";
    case Dtype::kFloat16:
      return "float16";
  }
  return "?";
}

Dtype parse_dtype_name(const std::string& name) {
  if (name == "auto") return Dtype::kAuto;
  if (name == "fp32" || name == "float32" || name == "float") return Dtype::kFloat32;
  if (name == "bf16" || name == "bfloat16") return Dtype::kBFloat16;
  if (name == "fp16" || name == "float16" || name == "half") return Dtype::kFloat16;
  throw Error(ErrorCode::kInvalidArgument,
              "dtype '" + name + "' is unknown; use fp32, bf16, fp16 (or auto for the weights)");
}

const char* fp8_weights_name(Fp8Weights mode) { return mode == Fp8Weights::kKeep ? "keep" : "dequantize"; }

Fp8Weights parse_fp8_weights(const std::string& name) {
  if (name == "dequantize") return Fp8Weights::kDequantize;
  if (name == "keep") return Fp8Weights::kKeep;
  throw Error(ErrorCode::kInvalidArgument, "fp8 weights '" + name +
                                               "' is unknown; use dequantize (to the compute dtype at load) or keep "
                                               "(float8 in memory, dequantized one layer at a time)");
}

std::string device_name(const Device& device) {
  if (device.is_cpu()) return "cpu";
  return device.index < 0 ? "cuda" : "cuda:" + std::to_string(device.index);
}

Device parse_device_name(const std::string& name) {
  Device d;
  if (name == "cpu") return d;
  d.kind = Device::Kind::kCuda;
  if (name == "cuda") return d;
  if (name.rfind("cuda:", 0) == 0 && name.size() > 5 && name.size() < 9 &&
      name.find_first_not_of("0123456789", 5) == std::string::npos) {
    d.index = std::atoi(name.c_str() + 5);
    return d;
  }
  throw Error(ErrorCode::kInvalidArgument, "unknown device '" + name + "': use cpu, cuda or cuda:N");
}

}  // namespace wan
