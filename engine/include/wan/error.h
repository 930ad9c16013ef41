// Public error type of the engine. No torch types: safe to include from ui/.
#pragma once

#include <cstddef>
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

// `text` made safe to print on one line of a terminal, a log or a JSON string: control characters
// (C0, DEL, C1) as \n, \t, \r or \xNN / \u00NN, bytes that are not UTF-8 as \xNN, and at most
// kMaxMessageBytes (the rest counted: "... (N more bytes)"). Names read from files (tensor names, pickle
// strings, metadata) reach messages unchanged otherwise: an ESC in a tensor name would drive the terminal.
constexpr std::size_t kMaxMessageBytes = 4096;
std::string printable_text(const std::string& text);

// Engine exception: a one-line message that names the object (file, setting) and the problem. The
// message is stored through printable_text, so what() is always one printable UTF-8 line.
class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(printable_text(message)), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace wan
