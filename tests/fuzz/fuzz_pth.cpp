// Fuzz target: a whole torch.save archive opened by PthFile (zip + unpickler + storages), and every
// tensor view it accepts (dtype, shape, stride, storage offset against the storage record) read in full.
// CRC checks off: a mutated data.pkl must reach the unpickler, not stop at its checksum.
#include <cstddef>
#include <cstdint>

#include "fuzz_util.h"
#include "weights/pth_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const wan::fuzz::MemoryFile file(data, size);
  wan::fuzz::refuse_or_accept([&] {
    const auto source = wan::PthFile::open(file.path(), /*verify_crc=*/false);
    for (const std::string& name : source->names()) {
      (void)source->info(name);
      const torch::Tensor view = source->view(name);
      // Overlapping strides may make a view far larger than its bytes; reading the elements at the two
      // ends of the view is enough for ASan to see any byte out of the record.
      if (view.numel() > 0) (void)view.flatten().narrow(0, view.numel() - 1, 1).clone();
      if (view.numel() <= (1 << 16)) (void)view.clone();
    }
  });
  return 0;
}
