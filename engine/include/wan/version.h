// Engine and LibTorch versions (recorded in sidecars and benchmark output).
#pragma once

namespace wan {
extern const char* const kWanVersion;       // project version, e.g. "0.2.0"
extern const char* const kWanTorchVersion;  // the LibTorch the engine was built with
}  // namespace wan
