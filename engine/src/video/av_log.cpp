#include "video/av_log.h"

#if WAN_WITH_FFMPEG

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <mutex>

extern "C" {
#include <libavutil/log.h>
}

namespace wan::av {
namespace {

thread_local std::string t_last_error;

// FFmpeg's own log goes to stderr from inside the library (a broken JPEG printed four lines before the
// engine's one-line error). Errors are kept for the caller's message instead; WAN_FFMPEG_LOG=1 shows
// everything FFmpeg says, as it says it.
void capture(void* avcl, int level, const char* fmt, va_list args) {
  static const bool verbose = std::getenv("WAN_FFMPEG_LOG") != nullptr;
  if (verbose) {
    va_list copy;
    va_copy(copy, args);
    av_log_default_callback(avcl, level, fmt, copy);
    va_end(copy);
  }
  if (level > AV_LOG_ERROR) return;
  char line[1024];
  int no_prefix = 0;  // "[mjpeg @ 0x...] " has an address in it: "mjpeg: " instead
  av_log_format_line2(avcl, level, fmt, args, line, sizeof(line), &no_prefix);
  const AVClass* cls = avcl ? *static_cast<AVClass**>(avcl) : nullptr;
  std::string text = (cls && cls->item_name ? std::string(cls->item_name(avcl)) + ": " : std::string()) + line;
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (!text.empty()) t_last_error = text;
}

}  // namespace

void capture_log() {
  static std::once_flag once;
  std::call_once(once, [] { av_log_set_callback(&capture); });
  t_last_error.clear();
}

std::string last_log_error() { return t_last_error; }

}  // namespace wan::av

#endif  // WAN_WITH_FFMPEG
