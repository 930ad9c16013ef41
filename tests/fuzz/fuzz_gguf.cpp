// Fuzz target: a GGUF file (header, metadata, tensor infos, alignment, ComfyUI-GGUF's orig_shape keys)
// opened by GgufFile and every tensor it accepts dequantized in full (the block decoders read exactly the
// bytes the header sized: out of the mapping, ASan reports it).
#include <cstddef>
#include <cstdint>

#include "fuzz_util.h"
#include "weights/gguf_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const wan::fuzz::MemoryFile file(data, size);
  wan::fuzz::refuse_or_accept([&] {
    const auto source = wan::GgufFile::open(file.path());
    for (const std::string& name : source->names()) {
      (void)source->info(name);
      (void)source->view(name).sum();
    }
    (void)source->parameter_count();
  });
  return 0;
}
