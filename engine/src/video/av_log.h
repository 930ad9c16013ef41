// FFmpeg's log, kept off stderr: the last error line FFmpeg logged on this thread is kept for the
// engine's own message (`WAN_FFMPEG_LOG=1` shows FFmpeg's whole log instead). Only with WAN_WITH_FFMPEG.
#pragma once
#include <string>

namespace wan::av {

// Installs the capture (once per process) and forgets this thread's last error: call before an operation.
void capture_log();

// The last error FFmpeg logged on this thread since capture_log(), or "".
std::string last_log_error();

}  // namespace wan::av
