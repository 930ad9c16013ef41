// Process-wide runtime set-up shared by every executable: threads, devices, dtypes.
#pragma once

#include <torch/types.h>

#include <string>

namespace wan {

// Sets LibTorch's intra-op thread count to the machine's cores (Debian's build starts at 1).
// threads <= 0 means "all cores". Call once at start-up.
void init_runtime(int threads = 0);

// "fp32" | "float32" | "bf16" | "bfloat16" | "fp16" | "float16" -> scalar type; throws kInvalidArgument.
torch::ScalarType parse_dtype(const std::string& name);
const char* dtype_name(torch::ScalarType dtype);

// "cpu" | "cuda" | "cuda:N"; throws kInvalidArgument, or kUnsupported when CUDA is missing.
torch::Device parse_device(const std::string& name);

// CUDA GPUs this process can use (0 in CPU builds).
int cuda_device_count();

}  // namespace wan
