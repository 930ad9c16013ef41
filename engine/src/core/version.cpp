#include "wan/version.h"

#include <ATen/Context.h>
#include <torch/version.h>

#include <cstdio>

#if WAN_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <c10/cuda/CUDAFunctions.h>
#endif
#include "dist/communicator.h"

namespace wan {
const char* const kWanVersion = WAN_VERSION_STRING;
const char* const kWanTorchVersion = TORCH_VERSION;

namespace {
// CUDA packs versions as major * 1000 + minor * 10 (cudaRuntimeGetVersion), cuDNN 9 as
// major * 10000 + minor * 100 + patch (cudnn_version.h).
std::string dotted(long v, long major_div, long minor_div, bool with_patch) {
  std::string s = std::to_string(v / major_div) + "." + std::to_string((v % major_div) / minor_div);
  if (with_patch) s += "." + std::to_string(v % minor_div);
  return s;
}
}  // namespace

BuildInfo build_info() {
  BuildInfo info;
  info.wan_version = kWanVersion;
  info.torch_version = kWanTorchVersion;
  info.nccl_compiled = nccl_available();
  info.nccl_version = nccl_version();
#if WAN_WITH_CUDA
  info.cuda_compiled = true;
  try {
    const auto& hooks = at::detail::getCUDAHooks();
    info.cuda_version = dotted(hooks.versionCUDART(), 1000, 10, false);
    info.cudnn_compiled = hooks.compiledWithCuDNN();
    if (info.cudnn_compiled) info.cudnn_version = dotted(hooks.versionCuDNN(), 10000, 100, true);
    const int n = c10::cuda::device_count();  // 0 (no exception) without a driver or a GPU
    for (int i = 0; i < n; ++i) {
      const cudaDeviceProp* p = at::cuda::getDeviceProperties(static_cast<c10::DeviceIndex>(i));
      char line[640];  // the name is at most 256 bytes (cudaDeviceProp::name)
      std::snprintf(line, sizeof line, "cuda:%d %s, %.1f GiB, compute capability %d.%d", i, p->name,
                    static_cast<double>(p->totalGlobalMem) / (1024.0 * 1024.0 * 1024.0), p->major, p->minor);
      info.gpus.emplace_back(line);
    }
    if (n == 0) info.gpu_note = "no NVIDIA driver, or CUDA_VISIBLE_DEVICES hides the GPUs";
  } catch (const std::exception& e) {
    info.gpu_note = std::string("CUDA query failed: ") + e.what();
  }
#else
  info.gpu_note = "CPU-only build (no CUDA toolkit when it was configured)";
#endif
  return info;
}

std::string build_info_text(const BuildInfo& info) {
  auto yes_no = [](bool b, const std::string& v) {
    return b ? "yes" + (v.empty() ? "" : " (" + v + ")") : std::string("no");
  };
  std::string s = "wan " + info.wan_version + "\n";
  s += "LibTorch " + info.torch_version + "\n";
  s += "CUDA:  " + yes_no(info.cuda_compiled, info.cuda_version) + "\n";
  s += "NCCL:  " + yes_no(info.nccl_compiled, info.nccl_version) + "\n";
  s += "cuDNN: " + yes_no(info.cudnn_compiled, info.cudnn_version) + "\n";
  s += "oneDNN (CPU): " + std::string(at::hasMKLDNN() ? "yes" : "no") + "\n";
  if (info.gpus.empty())
    s += "GPUs: none (" + info.gpu_note + ")\n";
  else {
    s += "GPUs: " + std::to_string(info.gpus.size()) + "\n";
    for (const auto& g : info.gpus) s += "  " + g + "\n";
  }
  return s;
}

}  // namespace wan
