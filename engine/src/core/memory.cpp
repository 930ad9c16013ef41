#include "core/memory.h"

#include <fstream>
#include <string>

namespace wan {
namespace {

std::int64_t status_field_kb(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::string prefix = std::string(key) + ":";
  while (std::getline(in, line))
    if (line.compare(0, prefix.size(), prefix) == 0) return std::stoll(line.substr(prefix.size()));
  return 0;
}

}  // namespace

std::int64_t current_rss_bytes() { return status_field_kb("VmRSS") * 1024; }
std::int64_t peak_rss_bytes() { return status_field_kb("VmHWM") * 1024; }

bool reset_peak_rss() {
  std::ofstream out("/proc/self/clear_refs");
  if (!out) return false;
  out << "5";
  return static_cast<bool>(out.flush());
}

}  // namespace wan
