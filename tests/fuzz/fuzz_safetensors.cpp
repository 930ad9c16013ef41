// Fuzz target: a safetensors file (header JSON, dtypes, shapes, offsets) opened by SafetensorsFile and
// every tensor it accepts read in full.
#include <cstddef>
#include <cstdint>

#include "fuzz_util.h"
#include "weights/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const wan::fuzz::MemoryFile file(data, size);
  wan::fuzz::refuse_or_accept([&] {
    const auto source = wan::SafetensorsFile::open(file.path());
    for (const std::string& name : source->names()) {
      (void)source->info(name);
      // A copy reads every byte the view claims: out of the mapping, ASan reports it.
      (void)source->view(name).clone();
    }
    (void)source->parameter_count();
  });
  return 0;
}
