// Whole numbers read from untrusted JSON (config.json, job files, sidecars, safetensors headers).
// nlohmann's get<std::int64_t>() converts a float (1e300) or an unsigned beyond INT64_MAX by
// static_cast: undefined behaviour or a wrapped value. These return nothing instead, so the caller
// names the field in its own error.
#pragma once

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>

namespace wan {

// v as an Int when it is a JSON integer (not a float, even 2.0) that Int holds; otherwise nothing.
template <typename Int>
std::optional<Int> json_integer(const nlohmann::json& v) {
  static_assert(std::is_integral_v<Int> && std::is_signed_v<Int>, "signed integer fields only");
  std::int64_t wide = 0;
  if (v.is_number_unsigned()) {
    const std::uint64_t u = v.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return std::nullopt;
    wide = static_cast<std::int64_t>(u);
  } else if (v.is_number_integer()) {
    wide = v.get<std::int64_t>();
  } else {
    return std::nullopt;
  }
  if (wide < std::numeric_limits<Int>::min() || wide > std::numeric_limits<Int>::max()) return std::nullopt;
  return static_cast<Int>(wide);
}

}  // namespace wan
