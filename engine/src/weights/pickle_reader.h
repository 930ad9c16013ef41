// Restricted unpickler for torch.save state_dicts. It understands only what a tensor dictionary needs
// (dicts, tuples, lists, numbers, strings, OrderedDict, _rebuild_tensor_v2, typed storages) and refuses
// any other global. It never executes code.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "weights/stored_dtype.h"

namespace wan {

struct PickledTensor {
  std::string storage_key;  // file name under <archive>/data/
  StoredDType dtype = StoredDType::kF32;
  std::int64_t storage_numel = 0;
  std::int64_t storage_offset = 0;  // in elements
  std::vector<std::int64_t> shape;
  std::vector<std::int64_t> stride;
};

// Parses data.pkl. Returns the tensors of the top-level dict (or of its "state_dict" entry) in order.
// Throws wan::Error(kCorruptFile / kUnsupported) with "<context>: ..." messages.
std::vector<std::pair<std::string, PickledTensor>> read_state_dict_pickle(const std::uint8_t* data,
                                                                          std::size_t size_bytes,
                                                                          const std::string& context);

// The storage class name torch uses for a dtype ("FloatStorage", ...), and back.
const char* storage_class_name(StoredDType dtype);

}  // namespace wan
