// The phases of a run in words (wan/generation.h Phase): the short keys of sidecars and WAN_TEST_OOM,
// and the words of messages ("out of memory ... while <description>").
#include "wan/generation.h"

namespace wan {

const char* phase_name(Phase phase) {
  switch (phase) {
    case Phase::kNone:
      return "none";
    case Phase::kStarting:
      return "starting";
    case Phase::kLoading:
      return "loading";
    case Phase::kEncodingText:
      return "text";
    case Phase::kSampling:
      return "sampling";
    case Phase::kDecoding:
      return "decoding";
    case Phase::kWriting:
      return "writing";
    case Phase::kDone:
      return "done";
    case Phase::kFailed:
      return "failed";
  }
  return "?";
}

const char* phase_description(Phase phase) {
  switch (phase) {
    case Phase::kLoading:
      return "loading the DiT";
    case Phase::kEncodingText:
      return "encoding the prompt";
    case Phase::kSampling:
      return "sampling";
    case Phase::kDecoding:
      return "decoding the latent (VAE)";
    case Phase::kWriting:
      return "writing the outputs";
    case Phase::kDone:
      return "finishing";
    case Phase::kNone:
      return "starting";
    default:
      return "checking the settings and model files";
  }
}

}  // namespace wan
