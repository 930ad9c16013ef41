#include "wan/system_info.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

namespace wan {
namespace {

std::int64_t host_memory() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  std::int64_t kb = 0;
  while (in >> key >> kb) {
    if (key == "MemTotal:") return kb * 1024;
    in.ignore(256, '\n');
  }
  return 0;
}

// "name, memory.total [MiB]" lines from nvidia-smi; empty when it is missing or fails.
std::vector<GpuInfo> query_nvidia_smi() {
  std::vector<GpuInfo> gpus;
  FILE* p = popen("nvidia-smi --query-gpu=name,memory.total --format=csv,noheader,nounits 2>/dev/null", "r");
  if (!p) return gpus;
  char line[512];
  while (std::fgets(line, sizeof line, p)) {
    std::string s(line);
    const std::size_t comma = s.rfind(',');
    if (comma == std::string::npos) continue;
    GpuInfo g;
    g.name = s.substr(0, comma);
    g.memory_bytes = std::atoll(s.c_str() + comma + 1) * (std::int64_t(1) << 20);
    if (g.memory_bytes > 0) gpus.push_back(g);
  }
  if (pclose(p) != 0) gpus.clear();
  return gpus;
}

}  // namespace

SystemInfo system_info() {
  SystemInfo info;
  info.host_memory_bytes = host_memory();
  info.cpu_cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (const char* fake = std::getenv("WAN_STUDIO_GPUS")) {
    int n = 0;
    double gib = 0;
    if (std::sscanf(fake, "%d:%lf", &n, &gib) == 2 && n >= 0) {
      for (int i = 0; i < n; ++i) info.gpus.push_back({"simulated GPU", static_cast<std::int64_t>(gib * (1ull << 30))});
      info.note = "GPUs from WAN_STUDIO_GPUS (simulated)";
      return info;
    }
  }
  info.gpus = query_nvidia_smi();
  info.note = info.gpus.empty() ? "no NVIDIA GPU found (nvidia-smi missing or reports none)" : "GPUs from nvidia-smi";
  return info;
}

}  // namespace wan
