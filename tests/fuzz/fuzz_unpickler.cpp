// Fuzz target: the restricted unpickler alone (opcodes, nesting, globals, the tensor rebuild calls) on
// any bytes, as data.pkl of a torch.save archive.
#include <cstddef>
#include <cstdint>

#include "fuzz_util.h"
#include "weights/pickle_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  wan::fuzz::refuse_or_accept([&] { (void)wan::read_state_dict_pickle(data, size, "fuzz/data.pkl"); });
  return 0;
}
