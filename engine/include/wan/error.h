// Public error type of the engine. No torch types: safe to include from ui/.
#pragma once

#include <stdexcept>
#include <string>

namespace wan {

// Stable codes: they cross process boundaries (exit codes, the progress board).
enum class ErrorCode : int {
  kOk = 0,
  kInvalidArgument = 2,  // a setting the user gave is wrong
  kFileNotFound = 3,
  kCorruptFile = 4,    // a weight or data file is malformed or truncated
  kUnsupported = 5,    // valid input the engine does not handle (dtype, layout)
  kModelMismatch = 6,  // missing/unexpected tensors, shape mismatch
  kIo = 7,             // read/write failure
  kCommunication = 8,  // a collective failed or timed out, or a peer rank is gone
  kCancelled = 9,      // the user cancelled the run
  kInternal = 10,
  kOutOfMemory = 11,  // an allocation failed (host or GPU); the message names the phase and what helps
};

const char* error_code_name(ErrorCode code);

// Engine exception: a one-line message that names the object (file, setting) and the problem.
class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace wan
