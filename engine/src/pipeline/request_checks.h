// Checks of a request that touch no model file: where its outputs go (run by validate_settings, plan.h)
// and whether its text is valid UTF-8.
#pragma once
#include <cstddef>
#include <string>

#include "wan/generation.h"

namespace wan {

// The outputs the request names can be written: at least one named when `require_output`; each folder
// exists, takes a new file and has room; nothing of the user's is replaced without `overwrite`. Throws
// wan::Error (kInvalidArgument, kUnsupported, kIo) with one line naming the flag and what to do.
void validate_outputs(const GenerationRequest& request, bool require_output);

// Byte offset of the first invalid UTF-8 sequence (overlong forms, surrogates and code points past
// U+10FFFF included), or npos. The tokenizer and the sidecar's JSON both need valid UTF-8; a bad byte
// used to fail after the whole run ("internal error" from the JSON writer, the video left behind).
std::size_t invalid_utf8_at(const std::string& text);

}  // namespace wan
