#include "core/runtime.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <c10/util/Logging.h>
#include <malloc.h>
#include <torch/cuda.h>

#include <cstdlib>
#include <string>
#include <thread>

#include "core/cpu_allocator.h"
#include "core/out_of_memory.h"
#include "wan/error.h"

namespace wan {

void init_runtime(int threads) {
  if (threads > kMaxThreads)
    throw Error(ErrorCode::kInvalidArgument, "--threads " + std::to_string(threads) + " is more than the " +
                                                 std::to_string(kMaxThreads) +
                                                 " threads this engine takes: give at most the machine's cores "
                                                 "(0: all of them)");
  if (threads <= 0) threads = static_cast<int>(std::thread::hardware_concurrency());
  if (threads <= 0) threads = 1;
  at::set_num_threads(threads);
  // LibTorch's CPU allocator is plain malloc. glibc serves large blocks with fresh mmap()s and returns
  // them at free(), so every big temporary is page-faulted in again: measured here, the VAE decode of
  // the demo clip spent 24 s of 35 s CPU in the kernel. Keeping freed memory in the heap (no trimming,
  // no per-block mmap) cut that decode from 28.3 s to 4.9 s. GLIBC_TUNABLES, when set, wins.
  if (!std::getenv("GLIBC_TUNABLES")) {
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
  }
  install_cpu_block_cache();
  // c10d logs its own warnings and errors on stderr (TCPStore connection retries, ProcessGroup
  // watchdog reports with C++ stack frames), while the engine reports each failure itself in one line
  // (wan/error.h). Only fatal ones then, unless TORCH_CPP_LOG_LEVEL or --verbose (WAN_VERBOSE) asks.
  if (!std::getenv("TORCH_CPP_LOG_LEVEL") && !verbose_errors()) FLAGS_caffe2_log_level = 3;  // c10: 3 = FATAL
  // float32 on CUDA: LibTorch's defaults, as in the official code (cuDNN convolutions in TF32, cuBLAS
  // matmuls in full fp32). WAN_CUDA_TF32=0 makes convolutions full fp32 too (the fp32 fixture checks
  // need it: TF32 keeps 10 mantissa bits, about 1e-3 relative error); WAN_CUDA_TF32=1 allows TF32 for both.
  if (const char* tf32 = std::getenv("WAN_CUDA_TF32")) {
    const bool on = std::string(tf32) == "1";
    at::globalContext().setAllowTF32CuDNN(on);
    at::globalContext().setAllowTF32CuBLAS(on);
  }
}

torch::ScalarType parse_dtype(const std::string& name) {
  if (name == "fp32" || name == "float32" || name == "float") return torch::kFloat32;
  if (name == "bf16" || name == "bfloat16") return torch::kBFloat16;
  if (name == "fp16" || name == "float16" || name == "half") return torch::kFloat16;
  throw Error(ErrorCode::kInvalidArgument, "unknown dtype '" + name + "': use fp32, bf16 or fp16");
}

const char* dtype_name(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kFloat32:
      return "fp32";
    case torch::kBFloat16:
      return "bf16";
    case torch::kFloat16:
      return "fp16";
    default:
      return "other";
  }
}

torch::Device parse_device(const std::string& name) {
  if (name == "cpu") return torch::Device(torch::kCPU);
  if (name.rfind("cuda", 0) == 0) {
    if (!torch::cuda::is_available())
      throw Error(ErrorCode::kUnsupported,
                  "device '" + name + "' asked for, but this build or machine has no CUDA GPU: use --device cpu");
    try {
      return torch::Device(name);
    } catch (const std::exception&) {
    }
  }
  throw Error(ErrorCode::kInvalidArgument, "unknown device '" + name + "': use cpu, cuda or cuda:N");
}

torch::ScalarType to_scalar_type(Dtype dtype) {
  switch (dtype) {
    case Dtype::kFloat32:
      return torch::kFloat32;
    case Dtype::kBFloat16:
      return torch::kBFloat16;
    case Dtype::kFloat16:
      return torch::kFloat16;
    case Dtype::kAuto:
      break;
  }
  throw Error(ErrorCode::kInternal, "dtype auto must be resolved before it is used");
}

torch::Device to_torch_device(const Device& device) { return parse_device(device_name(device)); }

int cuda_device_count() { return static_cast<int>(torch::cuda::device_count()); }

}  // namespace wan
