// What this machine offers the studio: GPUs (count, names, memory) and host memory. Read without
// touching CUDA in the calling process (nvidia-smi), so the studio holds no GPU memory itself.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace wan {

struct GpuInfo {
  std::string name;
  std::int64_t memory_bytes = 0;
};

struct SystemInfo {
  std::vector<GpuInfo> gpus;
  std::int64_t host_memory_bytes = 0;
  int cpu_cores = 1;
  std::string note;  // how the GPUs were found, or why none were
};

// $WAN_STUDIO_GPUS="N:GiB" overrides the GPU query (tests and screenshots on machines without GPUs).
SystemInfo system_info();

}  // namespace wan
