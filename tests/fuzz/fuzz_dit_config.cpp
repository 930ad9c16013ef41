// Fuzz target: a DiT config.json as the official checkpoints ship it, parsed and validated, then the
// figures derived from it (label and parameter count) that the planner uses before any allocation.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "model/dit_config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  wan::fuzz::refuse_or_accept([&] {
    const wan::DitConfig config = wan::dit_config_from_json(text, "fuzz/config.json");
    config.validate("fuzz/config.json");
    (void)config.label();
    (void)config.parameter_count();
  });
  return 0;
}
