#include "pipeline/memory_check.h"

#include <cstdlib>

#include "core/memory.h"
#include "wan/error.h"

namespace wan {
namespace {

EstimateSettings estimate_settings_for(const GenerationRequest& request, const DistConfig& config) {
  EstimateSettings s;
  s.width = request.width;  // image-to-video: the largest area; the video's own size is at most that
  s.height = request.height;
  s.frames = request.frames;
  s.dtype = request.dtype;
  s.fp8_weights = request.fp8_weights;
  s.gpu = request.device.is_cuda();
  s.picture = !request.image.empty();
  s.step_cache = request.cache.enabled();
  s.config = config;
  return s;
}

}  // namespace

MemoryCheck measure_memory_check(const ModelDims& model, const GenerationRequest& request, const DistConfig& config) {
  MemoryCheck check;
  const EstimateSettings s = estimate_settings_for(request, config);
  check.gpu = s.gpu;
  check.device_index = request.device.index >= 0 ? request.device.index : 0;
  check.need_bytes = phase_need_bytes(model, s, check.phase);
  check.available_bytes = check.gpu ? device_free_bytes(check.device_index) : host_available_bytes();
  // Tests: a machine with less memory than this one (WAN_TEST_AVAILABLE_BYTES=<bytes>).
  if (const char* fake = std::getenv("WAN_TEST_AVAILABLE_BYTES")) check.available_bytes = std::atoll(fake);
  return check;
}

void check_memory_fits(const ModelDims& model, const GenerationRequest& request, const DistConfig& config) {
  if (request.force || !request.decode_latent.empty()) return;  // decoding a latent: bounded, per chunk
  const MemoryCheck check = measure_memory_check(model, request, config);
  if (check.available_bytes < 0 || check.need_bytes <= check.available_bytes) return;
  const int world = config.world_size;
  std::string message =
      "this run needs about " + format_bytes(check.need_bytes) +
      (check.gpu ? " on " + device_name(request.device)
                 : " of host memory" + (world > 1 ? " for its " + std::to_string(world) + " ranks" : std::string())) +
      " by the estimate, but " + format_bytes(check.available_bytes) + (check.gpu ? " is free there" : " is available");
  const std::vector<MemoryRemedy> remedies =
      memory_remedies(model, estimate_settings_for(request, config), check.phase);
  if (!remedies.empty()) {
    message += "; what helps most, by the estimate:";
    for (std::size_t i = 0; i < remedies.size(); ++i)
      message += std::string(i ? "," : "") + " " + remedies[i].flags + " (" + remedies[i].description + ", " +
                 format_bytes(remedies[i].bytes) + ")";
  }
  message += kStartAnywayHint;
  throw Error(ErrorCode::kOutOfMemory, message);
}

}  // namespace wan
