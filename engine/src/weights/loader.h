// Opening weight files by kind, and strict loading into a module by name.
#pragma once

#include <torch/nn/module.h>

#include <string>

#include "weights/tensor_source.h"

namespace wan {

// A .safetensors file, a *.safetensors.index.json, or a torch .pth/.pt/.bin zip archive (sniffed by
// content when the extension says nothing). float8 weights with scales (weights/scaled_fp8.h) read as
// the weights they stand for. Throws wan::Error naming the file.
TensorSourcePtr open_weights(const std::string& path);

// Copies every parameter and buffer of `module` from `source` (names must match exactly; dtype and
// device converted to the parameter's). Fails with one line naming the file and the missing,
// unexpected or mis-shaped tensors.
void load_strict(torch::nn::Module& module, const TensorSource& source, const std::string& what);

// What a loader copies into a parameter of dtype `target` for `name`: the float8 bytes when the
// parameter keeps float8 (keep_float8_weights, model/model_files.h), else view(name), the value.
// Throws wan::Error(kInternal) for a float8 parameter the source has no float8 bytes for.
torch::Tensor stored_value(const TensorSource& source, const std::string& name, torch::ScalarType target);

// Elements [offset, offset + count) of stored_value flattened, computing no more than those rows
// (TensorSource::flat_range); for the sharding loader, where each rank reads only its shard.
torch::Tensor stored_range(const TensorSource& source, const std::string& name, torch::ScalarType target,
                           std::int64_t offset, std::int64_t count);

// The checks of load_strict without the copy (for loaders that place the tensors themselves).
void check_strict(torch::nn::Module& module, const TensorSource& source, const std::string& what);

}  // namespace wan
