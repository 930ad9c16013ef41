#include "wan/error.h"

namespace wan {

const char* error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk:
      return "ok";
    case ErrorCode::kInvalidArgument:
      return "invalid argument";
    case ErrorCode::kFileNotFound:
      return "file not found";
    case ErrorCode::kCorruptFile:
      return "corrupt file";
    case ErrorCode::kUnsupported:
      return "unsupported";
    case ErrorCode::kModelMismatch:
      return "model mismatch";
    case ErrorCode::kIo:
      return "i/o error";
    case ErrorCode::kCommunication:
      return "communication error";
    case ErrorCode::kCancelled:
      return "cancelled";
    case ErrorCode::kInternal:
      return "internal error";
    case ErrorCode::kOutOfMemory:
      return "out of memory";
  }
  return "unknown";
}

}  // namespace wan
