#include "wan/version.h"

#include <torch/version.h>

namespace wan {
const char* const kWanVersion = WAN_VERSION_STRING;
const char* const kWanTorchVersion = TORCH_VERSION;
}  // namespace wan
