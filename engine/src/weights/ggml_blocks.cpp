#include "weights/ggml_blocks.h"

#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <cstring>

namespace wan {

namespace {

constexpr GgmlTypeTraits kTypes[] = {
    {GgmlType::kF32, "F32", 1, 4},      {GgmlType::kF16, "F16", 1, 2},       {GgmlType::kBF16, "BF16", 1, 2},
    {GgmlType::kQ8_0, "Q8_0", 32, 34},  {GgmlType::kQ6_K, "Q6_K", 256, 210}, {GgmlType::kQ5_K, "Q5_K", 256, 176},
    {GgmlType::kQ5_1, "Q5_1", 32, 24},  {GgmlType::kQ5_0, "Q5_0", 32, 22},   {GgmlType::kQ4_K, "Q4_K", 256, 144},
    {GgmlType::kQ4_1, "Q4_1", 32, 20},  {GgmlType::kQ4_0, "Q4_0", 32, 18},   {GgmlType::kQ3_K, "Q3_K", 256, 110},
    {GgmlType::kQ2_K, "Q2_K", 256, 84},
};

// ggml's names of the types it has and this engine does not read (ggml/include/ggml.h, enum ggml_type).
const char* other_type_name(std::uint32_t type) {
  switch (type) {
    case 9:
      return "Q8_1";
    case 15:
      return "Q8_K";
    case 16:
      return "IQ2_XXS";
    case 17:
      return "IQ2_XS";
    case 18:
      return "IQ3_XXS";
    case 19:
      return "IQ1_S";
    case 20:
      return "IQ4_NL";
    case 21:
      return "IQ3_S";
    case 22:
      return "IQ2_S";
    case 23:
      return "IQ4_XS";
    case 24:
      return "I8";
    case 25:
      return "I16";
    case 26:
      return "I32";
    case 27:
      return "I64";
    case 28:
      return "F64";
    case 29:
      return "IQ1_M";
    case 34:
      return "TQ1_0";
    case 35:
      return "TQ2_0";
    case 39:
      return "MXFP4";
    default:
      return nullptr;
  }
}

float fp16(const std::uint8_t* p) {
  const std::uint16_t bits = static_cast<std::uint16_t>(p[0] | (p[1] << 8));
  return static_cast<float>(c10::Half(bits, c10::Half::from_bits()));
}

std::uint32_t u32(const std::uint8_t* p) {
  return static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
         (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}

// Each block: `b` its bytes, `y` its values.
void q8_0(const std::uint8_t* b, float* y) {
  const float d = fp16(b);
  for (int j = 0; j < 32; ++j) y[j] = d * static_cast<float>(static_cast<std::int8_t>(b[2 + j]));
}

void q4_0(const std::uint8_t* b, float* y) {
  const float d = fp16(b);
  const std::uint8_t* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = d * static_cast<float>((qs[j] & 0x0F) - 8);
    y[j + 16] = d * static_cast<float>((qs[j] >> 4) - 8);
  }
}

void q4_1(const std::uint8_t* b, float* y) {
  const float d = fp16(b), m = fp16(b + 2);
  const std::uint8_t* qs = b + 4;
  for (int j = 0; j < 16; ++j) {
    y[j] = d * static_cast<float>(qs[j] & 0x0F) + m;
    y[j + 16] = d * static_cast<float>(qs[j] >> 4) + m;
  }
}

// The 32 five-bit values of a Q5_0 / Q5_1 block: low nibbles in qs, the fifth bits in the 32-bit qh
// (bit j for value j, bit j + 16 for value j + 16).
void q5_values(const std::uint8_t* qh_bytes, const std::uint8_t* qs, int* q) {
  const std::uint32_t qh = u32(qh_bytes);
  for (int j = 0; j < 16; ++j) {
    q[j] = (qs[j] & 0x0F) | static_cast<int>(((qh >> j) << 4) & 0x10);
    q[j + 16] = (qs[j] >> 4) | static_cast<int>((qh >> (j + 12)) & 0x10);
  }
}

void q5_0(const std::uint8_t* b, float* y) {
  const float d = fp16(b);
  int q[32];
  q5_values(b + 2, b + 6, q);
  for (int j = 0; j < 32; ++j) y[j] = d * static_cast<float>(q[j] - 16);
}

void q5_1(const std::uint8_t* b, float* y) {
  const float d = fp16(b), m = fp16(b + 2);
  int q[32];
  q5_values(b + 4, b + 8, q);
  for (int j = 0; j < 32; ++j) y[j] = d * static_cast<float>(q[j]) + m;
}

// The 6-bit scale and minimum of sub-block j (0..7) from the 12 packed bytes of a Q4_K / Q5_K block
// (ggml-quants.c get_scale_min_k4).
void scale_min_k4(int j, const std::uint8_t* q, int* scale, int* min) {
  if (j < 4) {
    *scale = q[j] & 63;
    *min = q[j + 4] & 63;
  } else {
    *scale = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
    *min = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

void q4_k(const std::uint8_t* b, float* y) {
  const float d = fp16(b), dmin = fp16(b + 2);
  const std::uint8_t* scales = b + 4;
  const std::uint8_t* q = b + 16;
  for (int j = 0, is = 0; j < 256; j += 64, is += 2, q += 32) {
    int sc, m;
    scale_min_k4(is, scales, &sc, &m);
    const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(m);
    scale_min_k4(is + 1, scales, &sc, &m);
    const float d2 = d * static_cast<float>(sc), m2 = dmin * static_cast<float>(m);
    for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0x0F) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
  }
}

void q5_k(const std::uint8_t* b, float* y) {
  const float d = fp16(b), dmin = fp16(b + 2);
  const std::uint8_t* scales = b + 4;
  const std::uint8_t* qh = b + 16;
  const std::uint8_t* ql = b + 48;
  std::uint8_t u1 = 1, u2 = 2;
  for (int j = 0, is = 0; j < 256; j += 64, is += 2, ql += 32) {
    int sc, m;
    scale_min_k4(is, scales, &sc, &m);
    const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(m);
    scale_min_k4(is + 1, scales, &sc, &m);
    const float d2 = d * static_cast<float>(sc), m2 = dmin * static_cast<float>(m);
    for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>((ql[l] & 0x0F) + ((qh[l] & u1) ? 16 : 0)) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
    u1 = static_cast<std::uint8_t>(u1 << 2);
    u2 = static_cast<std::uint8_t>(u2 << 2);
  }
}

void q6_k(const std::uint8_t* b, float* y) {
  const std::uint8_t* ql = b;
  const std::uint8_t* qh = b + 128;
  const auto* sc = reinterpret_cast<const std::int8_t*>(b + 192);
  const float d = fp16(b + 208);
  for (int n = 0; n < 256; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
      y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
      y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
      y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
    }
  }
}

void q3_k(const std::uint8_t* b, float* y) {
  const std::uint8_t* hm = b;
  const std::uint8_t* q = b + 32;
  const float d_all = fp16(b + 108);
  // The sixteen 6-bit scales: low 4 bits in bytes 0..7 (two a byte), high 2 bits in bytes 8..11
  // (ggml-quants.c dequantize_row_q3_K's kmask1 / kmask2 unpacking, written per scale).
  const std::uint8_t* packed = b + 96;
  int scales[16];
  for (int i = 0; i < 16; ++i) {
    const int low = (i < 8) ? (packed[i] & 0x0F) : (packed[i - 8] >> 4);
    const int high = (packed[8 + (i % 4)] >> (2 * (i / 4))) & 3;
    scales[i] = (low | (high << 4)) - 32;
  }
  int is = 0;
  std::uint8_t m = 1;
  for (int n = 0; n < 256; n += 128, q += 32) {
    int shift = 0;
    for (int j = 0; j < 4; ++j, shift += 2, m = static_cast<std::uint8_t>(m << 1)) {
      float dl = d_all * static_cast<float>(scales[is++]);
      for (int l = 0; l < 16; ++l) *y++ = dl * static_cast<float>(((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
      dl = d_all * static_cast<float>(scales[is++]);
      for (int l = 0; l < 16; ++l)
        *y++ = dl * static_cast<float>(((q[l + 16] >> shift) & 3) - ((hm[l + 16] & m) ? 0 : 4));
    }
  }
}

void q2_k(const std::uint8_t* b, float* y) {
  const std::uint8_t* scales = b;
  const std::uint8_t* q = b + 16;
  const float d = fp16(b + 80), dmin = fp16(b + 82);
  int is = 0;
  for (int n = 0; n < 256; n += 128, q += 32) {
    for (int shift = 0; shift < 8; shift += 2) {
      for (int half = 0; half < 2; ++half) {
        const std::uint8_t sc = scales[is++];
        const float dl = d * static_cast<float>(sc & 0x0F), ml = dmin * static_cast<float>(sc >> 4);
        for (int l = 0; l < 16; ++l) *y++ = dl * static_cast<float>((q[l + 16 * half] >> shift) & 3) - ml;
      }
    }
  }
}

using BlockFn = void (*)(const std::uint8_t*, float*);

BlockFn block_fn(GgmlType type) {
  switch (type) {
    case GgmlType::kQ8_0:
      return q8_0;
    case GgmlType::kQ4_0:
      return q4_0;
    case GgmlType::kQ4_1:
      return q4_1;
    case GgmlType::kQ5_0:
      return q5_0;
    case GgmlType::kQ5_1:
      return q5_1;
    case GgmlType::kQ2_K:
      return q2_k;
    case GgmlType::kQ3_K:
      return q3_k;
    case GgmlType::kQ4_K:
      return q4_k;
    case GgmlType::kQ5_K:
      return q5_k;
    case GgmlType::kQ6_K:
      return q6_k;
    default:
      return nullptr;
  }
}

}  // namespace

std::optional<GgmlTypeTraits> ggml_type_traits(std::uint32_t type) {
  for (const GgmlTypeTraits& t : kTypes)
    if (static_cast<std::uint32_t>(t.type) == type) return t;
  return std::nullopt;
}

std::string ggml_type_name(std::uint32_t type) {
  if (const auto t = ggml_type_traits(type)) return t->name;
  if (const char* name = other_type_name(type)) return name;
  return "type " + std::to_string(type);
}

std::string readable_ggml_types() {
  std::string out;
  for (const GgmlTypeTraits& t : kTypes) out += (out.empty() ? "" : ", ") + std::string(t.name);
  return out;
}

void dequantize_ggml(GgmlType type, const std::uint8_t* src, float* dst, std::int64_t n) {
  const GgmlTypeTraits t = *ggml_type_traits(static_cast<std::uint32_t>(type));
  const std::int64_t blocks = n / t.block_size;
  // Grain: ~64 KiB of output a task.
  const std::int64_t grain = std::max<std::int64_t>(1, 16384 / t.block_size);
  if (type == GgmlType::kF32) {
    std::memcpy(dst, src, static_cast<std::size_t>(n) * 4);
  } else if (type == GgmlType::kF16) {
    at::parallel_for(0, n, 16384, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t i = begin; i < end; ++i) dst[i] = fp16(src + 2 * i);
    });
  } else if (type == GgmlType::kBF16) {
    at::parallel_for(0, n, 16384, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t i = begin; i < end; ++i) {
        const std::uint16_t bits = static_cast<std::uint16_t>(src[2 * i] | (src[2 * i + 1] << 8));
        dst[i] = static_cast<float>(c10::BFloat16(bits, c10::BFloat16::from_bits()));
      }
    });
  } else {
    const BlockFn fn = block_fn(type);
    at::parallel_for(0, blocks, grain, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t i = begin; i < end; ++i) fn(src + i * t.type_size, dst + i * t.block_size);
    });
  }
}

}  // namespace wan
