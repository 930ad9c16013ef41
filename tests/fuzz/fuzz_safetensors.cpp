// Fuzz target: a safetensors file (header JSON, dtypes, shapes, offsets, fp8 scales) opened as the
// engine opens weights (open_weights: SafetensorsFile, then the fp8 scales applied) and every tensor it
// accepts read in full.
#include <cstddef>
#include <cstdint>

#include "fuzz_util.h"
#include "weights/loader.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const wan::fuzz::MemoryFile file(data, size);
  wan::fuzz::refuse_or_accept([&] {
    const auto source = wan::open_weights(file.path());  // no extension: sniffed, safetensors unless a zip
    for (const std::string& name : source->names()) {
      (void)source->info(name);
      // A copy reads every byte the view claims: out of the mapping, ASan reports it.
      (void)source->view(name).clone();
    }
    (void)source->parameter_count();
  });
  return 0;
}
