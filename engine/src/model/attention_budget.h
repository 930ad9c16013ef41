// How many float32 attention scores the CPU attention keeps at once (one query chunk): shared by the
// attention of one process (layers.cpp), the ring/Ulysses attention (sequence_parallel.cpp) and the
// memory estimator, which counts them. 64 MB: larger chunks are no faster, and their freed blocks
// fragment the heap glibc keeps, so the resident set grew far beyond the live tensors.
#pragma once
#include <cstdint>

namespace wan {

constexpr std::int64_t kAttentionChunkElements = std::int64_t(16) << 20;

}  // namespace wan
