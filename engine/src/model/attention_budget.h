// Working-set budgets of the engine's CPU kernels. How many float32 attention scores the CPU attention keeps at once
// (one query chunk): shared by the attention of one process (layers.cpp), the ring/Ulysses attention
// (sequence_parallel.cpp) and the memory estimator, which counts them. 64 MB: larger chunks are no faster, and their
// freed blocks fragment the heap glibc keeps, so the resident set grew far beyond the live tensors.
#pragma once
#include <cstdint>

namespace wan {

constexpr std::int64_t kAttentionChunkElements = std::int64_t(16) << 20;

// RoPE rotates this many elements of q or k at a time (its float64 temporaries: 16 MB each).
constexpr std::int64_t kRopeChunkElements = std::int64_t(2) << 20;

// On the CPU the DiT's FFN runs over slices of tokens whose [tokens, ffn_dim] hidden activations hold
// at most this many elements (16 MB of float32): the hidden state, its GELU and 0.5 x were the largest
// tensors of a CPU forward, three of them at once.
constexpr std::int64_t kFfnChunkElements = std::int64_t(4) << 20;

// How many rows (tokens, queries) of `elements_per_row` elements each fit in `budget` (at least one).
inline std::int64_t rows_per_slice(std::int64_t budget, std::int64_t elements_per_row) {
  const std::int64_t rows = budget / (elements_per_row > 0 ? elements_per_row : 1);
  return rows > 0 ? rows : 1;
}

}  // namespace wan
