// Refuse what cannot fit, before it starts (issue 18): the memory estimator's figure for a run
// (estimate/memory_estimate.cpp, docs/MEMORY.md) against what the device has free, checked before any
// weight is loaded. No torch types.
#pragma once

#include <cstdint>
#include <string>

#include "wan/dist_config.h"
#include "wan/estimate.h"
#include "wan/generation.h"

namespace wan {

// Where a run's memory comes from, as the check sees it.
struct MemoryCheck {
  bool gpu = false;                   // a CUDA device (free memory of that device) or the host (available memory)
  int device_index = 0;               // the CUDA device when gpu
  std::string phase = "peak";         // the estimate's phase (phase_bytes): "peak", or "decoding" for --decode-latent
  std::int64_t need_bytes = 0;        // phase_need_bytes: one GPU's need, or the whole world's on the host
  std::int64_t available_bytes = -1;  // -1: unknown (nothing is refused)
};

// The figures for `request` under `config` on this machine now: estimate of rank 0 (the output rank,
// which also decodes) and the device's free memory (host_available_bytes / device_free_bytes; tests
// set WAN_TEST_AVAILABLE_BYTES to stand for a smaller machine).
MemoryCheck measure_memory_check(const ModelDims& model, const GenerationRequest& request, const DistConfig& config);

// Throws wan::Error(kOutOfMemory) when request.force is off and the need exceeds what is available:
// one line with the need, what is available, the settings that lower it most (memory_remedies) and
// --force. Called before loading, where the run is started: by the launcher for ranks on the CPU
// (they share the host, so the world's need is compared with the host's memory once, before any rank
// takes some), and by each process for its own GPU, or for a CPU run of one process.
void check_memory_fits(const ModelDims& model, const GenerationRequest& request, const DistConfig& config);

}  // namespace wan
