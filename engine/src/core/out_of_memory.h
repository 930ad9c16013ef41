// Out of memory as a named outcome (issue 17): recognising an allocation failure whichever allocator
// raised it, and a test hook that makes one happen where a test asks.
//
// Allocation failures arrive as c10::OutOfMemoryError (LibTorch's CUDA caching allocator: "CUDA out of
// memory. Tried to allocate 2.00 GiB ..."; LibTorch's and this engine's CPU allocators: "... not enough
// memory ... N bytes"), as std::bad_alloc (std containers, new) or as a c10::Error whose message says
// so (older LibTorch CPU allocator paths, cuBLAS/cuDNN workspace failures). pipeline/generate.cpp turns
// them into wan::Error(kOutOfMemory) at the phase boundary, with the phase, the sizes and remedies.
#pragma once
#include <cstdint>
#include <exception>
#include <string>

#include "wan/error.h"

namespace wan {

struct AllocationFailure {
  bool out_of_memory = false;
  std::int64_t requested_bytes = -1;  // what the failed allocation asked for; -1 when the message does not say
};
AllocationFailure classify_allocation_failure(const std::exception& e);

// The message without LibTorch's C++ stack trace (c10::Error::what_without_backtrace); what() otherwise.
std::string message_without_backtrace(const std::exception& e);

// Any exception as the engine's error, without context: a wan::Error as it is; an allocation failure
// as kOutOfMemory ("out of memory: <allocator's words>"); anything else as kInternal. LibTorch's stack
// trace only with verbose_errors(). (pipeline/generate.cpp adds the phase and remedies.)
Error to_engine_error(const std::exception& e);

// Whether stack traces are asked for: WAN_VERBOSE set and not "0" (`--verbose` sets it for the
// workers it starts).
bool verbose_errors();

// Test hook. WAN_TEST_OOM="<phase>[:<rank>]" with a phase_name ("starting", "text", "loading",
// "sampling", "decoding", "writing"): when that phase begins on that rank (every rank when omitted),
// the next CPU tensor allocation fails (cpu_allocator.h) or, on a GPU, a CUDA allocation larger than
// the free memory is made, so the failure comes from the real allocator path. Does nothing unless set.
void maybe_inject_out_of_memory(const char* phase, int rank, bool cuda_device, int device_index);

}  // namespace wan
