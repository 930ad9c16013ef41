#include "weights/stored_dtype.h"

#include "wan/error.h"

namespace wan {
namespace {
struct Row {
  StoredDType dtype;
  const char* name;
  std::size_t bytes;
};
constexpr Row kRows[] = {
    {StoredDType::kF64, "F64", 8},   {StoredDType::kF32, "F32", 4},        {StoredDType::kF16, "F16", 2},
    {StoredDType::kBF16, "BF16", 2}, {StoredDType::kF8E4M3, "F8_E4M3", 1}, {StoredDType::kF8E5M2, "F8_E5M2", 1},
    {StoredDType::kI64, "I64", 8},   {StoredDType::kI32, "I32", 4},        {StoredDType::kI16, "I16", 2},
    {StoredDType::kI8, "I8", 1},     {StoredDType::kU8, "U8", 1},          {StoredDType::kBool, "BOOL", 1},
};
}  // namespace

std::optional<StoredDType> stored_dtype_from_safetensors(const std::string& name) {
  for (const Row& r : kRows)
    if (name == r.name) return r.dtype;
  return std::nullopt;
}

const char* safetensors_name(StoredDType dtype) {
  for (const Row& r : kRows)
    if (r.dtype == dtype) return r.name;
  return "?";
}

std::size_t element_size_bytes(StoredDType dtype) {
  for (const Row& r : kRows)
    if (r.dtype == dtype) return r.bytes;
  return 0;
}

torch::ScalarType to_scalar_type(StoredDType dtype, const std::string& context) {
  switch (dtype) {
    case StoredDType::kF64:
      return torch::kFloat64;
    case StoredDType::kF32:
      return torch::kFloat32;
    case StoredDType::kF16:
      return torch::kFloat16;
    case StoredDType::kBF16:
      return torch::kBFloat16;
    case StoredDType::kI64:
      return torch::kInt64;
    case StoredDType::kI32:
      return torch::kInt32;
    case StoredDType::kI16:
      return torch::kInt16;
    case StoredDType::kI8:
      return torch::kInt8;
    case StoredDType::kU8:
      return torch::kUInt8;
    case StoredDType::kBool:
      return torch::kBool;
    case StoredDType::kF8E4M3:
    case StoredDType::kF8E5M2:
      return dtype == StoredDType::kF8E4M3 ? torch::kFloat8_e4m3fn : torch::kFloat8_e5m2;
  }
  throw Error(ErrorCode::kInternal, context + ": unhandled dtype");
}

StoredDType from_scalar_type(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat64:
      return StoredDType::kF64;
    case torch::kFloat32:
      return StoredDType::kF32;
    case torch::kFloat16:
      return StoredDType::kF16;
    case torch::kBFloat16:
      return StoredDType::kBF16;
    case torch::kInt64:
      return StoredDType::kI64;
    case torch::kInt32:
      return StoredDType::kI32;
    case torch::kInt16:
      return StoredDType::kI16;
    case torch::kInt8:
      return StoredDType::kI8;
    case torch::kUInt8:
      return StoredDType::kU8;
    case torch::kBool:
      return StoredDType::kBool;
    case torch::kFloat8_e4m3fn:
      return StoredDType::kF8E4M3;
    case torch::kFloat8_e5m2:
      return StoredDType::kF8E5M2;
    default:
      break;
  }
  throw Error(ErrorCode::kUnsupported,
              std::string("tensor dtype ") + c10::toString(type) + " cannot be stored in a weight file");
}

}  // namespace wan
