// Element types as weight files store them, and their LibTorch counterparts.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <optional>
#include <string>

namespace wan {

enum class StoredDType { kF64, kF32, kF16, kBF16, kF8E4M3, kF8E5M2, kI64, kI32, kI16, kI8, kU8, kBool };

// Safetensors spelling ("F32", "BF16", "F8_E4M3", ...); nullopt when unknown.
std::optional<StoredDType> stored_dtype_from_safetensors(const std::string& name);
const char* safetensors_name(StoredDType dtype);
std::size_t element_size_bytes(StoredDType dtype);

// float8 maps to torch::kFloat8_e4m3fn / kFloat8_e5m2 (LibTorch >= 2.1; the project needs 2.11).
torch::ScalarType to_scalar_type(StoredDType dtype, const std::string& context);
// Throws wan::Error(kUnsupported) for a type no weight file uses.
StoredDType from_scalar_type(torch::ScalarType type);

}  // namespace wan
