// The element and block types of GGUF files (ggml's `enum ggml_type`) and their dequantization to
// float32, written from the block definitions in ggml (ggml/src/ggml-common.h: the block structs;
// ggml/src/ggml-quants.c: dequantize_row_*), the format the Wan GGUF files in circulation use
// (city96's ComfyUI-GGUF quantizations of the official Wan checkpoints).
//
// A quantized row of n values is n / block_size blocks of type_size bytes each; the legacy types hold 32
// values a block (one fp16 scale d, for the *_1 types also a minimum m), the K types 256 values in a
// super-block of 16 or 8 sub-blocks with 6- or 8-bit sub-scales:
//   Q8_0  34 B: d, 32 x int8                                  x = d q
//   Q5_0  22 B: d, qh[4] (5th bits), qs[16] (low nibbles)     x = d (q - 16)
//   Q5_1  24 B: d, m, qh[4], qs[16]                           x = d q + m
//   Q4_0  18 B: d, qs[16]                                     x = d (q - 8)
//   Q4_1  20 B: d, m, qs[16]                                  x = d q + m
//   Q6_K 210 B: ql[128], qh[64], int8 scales[16], d           x = d s (q - 32)
//   Q5_K 176 B: d, dmin, scales[12] (6-bit s, m), qh[32], qs[128]  x = d s q - dmin m
//   Q4_K 144 B: d, dmin, scales[12], qs[128]                  x = d s q - dmin m
//   Q3_K 110 B: hmask[32], qs[64], scales[12] (6-bit, -32), d x = d (s - 32) (q - 4 h)
//   Q2_K  84 B: scales[16] (4-bit s, m), qs[64], d, dmin      x = d s q - dmin m
// All multi-byte fields are little-endian; d, m and dmin are IEEE fp16.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace wan {

// ggml's numbering (stable: it is what GGUF files store).
enum class GgmlType : std::uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kBF16 = 30,
};

struct GgmlTypeTraits {
  GgmlType type;
  const char* name;         // ggml's name: "Q4_K", "BF16", ...
  std::int64_t block_size;  // values per block (1 for F32, F16, BF16)
  std::int64_t type_size;   // bytes per block
};

// The traits of a type this engine reads; nullopt for any other value (ggml's other types, or junk).
std::optional<GgmlTypeTraits> ggml_type_traits(std::uint32_t type);
// ggml's name of any type number, for messages ("IQ2_XXS"; "type 77" when ggml has none).
std::string ggml_type_name(std::uint32_t type);
// "F32, F16, BF16, Q8_0, ...": the types ggml_type_traits knows, for messages and the README.
std::string readable_ggml_types();

// Dequantizes n values (a multiple of the type's block size) from `src` into `dst` (float32), in
// parallel over blocks (LibTorch's intra-op threads). `src` holds n / block_size * type_size bytes.
// Any bit pattern is valid input (a NaN or infinity scale gives NaN or infinity values, as in ggml).
void dequantize_ggml(GgmlType type, const std::uint8_t* src, float* dst, std::int64_t n);

}  // namespace wan
