// Process-wide runtime set-up shared by every executable: threads, devices, dtypes.
#pragma once

#include <torch/types.h>

#include <string>

#include "wan/types.h"

namespace wan {

// Sets LibTorch's intra-op thread count to the machine's cores (Debian's build starts at 1).
// threads <= 0 means "all cores". Call once at start-up. Throws kInvalidArgument above kMaxThreads.
void init_runtime(int threads = 0);
// (kMaxThreads: wan/types.h.)

// "fp32" | "float32" | "bf16" | "bfloat16" | "fp16" | "float16" -> scalar type; throws kInvalidArgument.
torch::ScalarType parse_dtype(const std::string& name);
const char* dtype_name(torch::ScalarType dtype);

// "cpu" | "cuda" | "cuda:N"; throws kInvalidArgument, or kUnsupported when CUDA is missing.
torch::Device parse_device(const std::string& name);

// The public settings as LibTorch's types. to_scalar_type throws kInternal for Dtype::kAuto (resolve it
// first); to_torch_device throws kUnsupported when CUDA is missing (index -1: the current GPU).
torch::ScalarType to_scalar_type(Dtype dtype);
torch::Device to_torch_device(const Device& device);

// CUDA GPUs this process can use (0 in CPU builds).
int cuda_device_count();

}  // namespace wan
