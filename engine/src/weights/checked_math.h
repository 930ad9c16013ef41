// Arithmetic on numbers read from a file (sizes, strides, offsets, element counts): a product or sum
// that does not fit in int64 is reported, never wrapped. Wrapping turned a 2^62-element storage of a
// 16-byte record into "0 bytes, fits" and let a tensor view memory past its record
// (../shared/bad-inputs/t5_storage_numel_wrap_oob.pth), and a 2^62 stride past the bounds check.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <vector>

namespace wan {

// a * b and a + b, or nullopt when the result does not fit in int64 (GCC/Clang builtins).
inline std::optional<std::int64_t> checked_mul(std::int64_t a, std::int64_t b) {
  std::int64_t out = 0;
  if (__builtin_mul_overflow(a, b, &out)) return std::nullopt;
  return out;
}
inline std::optional<std::int64_t> checked_add(std::int64_t a, std::int64_t b) {
  std::int64_t out = 0;
  if (__builtin_add_overflow(a, b, &out)) return std::nullopt;
  return out;
}

// The elements of a shape (its product), or nullopt for a negative size or an overflow.
// A zero dim makes the count 0 but not the shape harmless: LibTorch computes the strides from the other
// dims, and [0, 2^40, 2^40] overflows them ("Stride calculation overflowed", found by fuzz_gguf). So
// the product of the non-zero dims must fit too.
inline std::optional<std::int64_t> checked_numel(const std::vector<std::int64_t>& shape) {
  std::int64_t n = 1;
  bool empty = false;
  for (std::int64_t d : shape) {
    if (d < 0) return std::nullopt;
    if (d == 0) {
      empty = true;
      continue;
    }
    const auto next = checked_mul(n, d);
    if (!next) return std::nullopt;
    n = *next;
  }
  return empty ? 0 : n;
}

// One past the highest element index a strided view reaches, counted from its offset:
// 1 + sum((shape[d] - 1) * stride[d]) (0 for an empty view); nullopt for negative sizes or strides, a
// rank mismatch or an overflow.
inline std::optional<std::int64_t> checked_view_span(const std::vector<std::int64_t>& shape,
                                                     const std::vector<std::int64_t>& stride) {
  if (shape.size() != stride.size()) return std::nullopt;
  std::int64_t span = 1;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] < 0 || stride[d] < 0) return std::nullopt;
    if (shape[d] == 0) return std::int64_t{0};
    const auto reach = checked_mul(shape[d] - 1, stride[d]);
    if (!reach) return std::nullopt;
    const auto sum = checked_add(span, *reach);
    if (!sum) return std::nullopt;
    span = *sum;
  }
  return span;
}

}  // namespace wan
