// Engine and LibTorch versions (recorded in sidecars and benchmark output), and what the build can do
// on this machine (`wan --version`, `wan-worker --version`).
#pragma once
#include <string>
#include <vector>

namespace wan {
extern const char* const kWanVersion;       // project version, e.g. "0.2.0"
extern const char* const kWanTorchVersion;  // the LibTorch the engine was built with, e.g. "2.11.0"

struct BuildInfo {
  std::string wan_version;        // kWanVersion
  std::string torch_version;      // kWanTorchVersion
  bool cuda_compiled = false;     // the CUDA variant (cmake/WanTorch.cmake): CUDA code and NCCL compiled in
  std::string cuda_version;       // CUDA runtime LibTorch was built with, e.g. "13.0" ("" in the CPU-only variant)
  bool nccl_compiled = false;     // c10d's ProcessGroupNCCL usable (the `nccl` backend)
  std::string nccl_version;       // e.g. "2.28.9" (the NCCL library loaded)
  bool cudnn_compiled = false;    // LibTorch's cuDNN back-ends (convolutions, SDPA's cuDNN attention)
  std::string cudnn_version;      // e.g. "9.19.0"
  std::vector<std::string> gpus;  // "NVIDIA H200, 139.8 GiB" for each GPU LibTorch sees (none without a driver)
  std::string gpu_note;           // why no GPU is seen, where none is
};

// Queries LibTorch (and, in the CUDA variant, the CUDA runtime: this creates no CUDA context but loads the
// driver where one is installed). Does not throw; a failing query is reported in gpu_note.
BuildInfo build_info();
// The lines `wan --version` prints.
std::string build_info_text(const BuildInfo& info);
}  // namespace wan
