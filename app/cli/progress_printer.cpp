#include "progress_printer.h"

#include <unistd.h>

#include <cmath>

namespace wan_cli {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  const long s = std::lround(seconds);
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof(buf), "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  else std::snprintf(buf, sizeof(buf), "%02ld:%02ld", s / 60, s % 60);
  return buf;
}

ProgressPrinter::ProgressPrinter(std::FILE* out) : out_(out), tty_(isatty(fileno(out)) != 0) {}

void ProgressPrinter::operator()(const wan::ProgressEvent& e) {
  if (e.phase == last_phase_ && e.step == last_step_) return;
  const bool new_phase = e.phase != last_phase_;
  last_phase_ = e.phase;
  last_step_ = e.step;
  char line[256];
  if (e.total > 0 && (e.phase == wan::Phase::kSampling || e.phase == wan::Phase::kDecoding)) {
    const double eta = e.step > 0 ? e.seconds_per_step * (e.total - e.step) : NAN;
    const char* unit = e.phase == wan::Phase::kSampling ? "step" : "frame";
    if (tty_) {
      const int width = 24;
      const int filled = e.total ? e.step * width / e.total : 0;
      std::string bar(static_cast<std::size_t>(filled), '#');
      bar.resize(width, '.');
      std::snprintf(line, sizeof(line), "[%-8s] %s %d/%d  %.2f s/%s  ETA %s  elapsed %s", wan::phase_name(e.phase), bar.c_str(),
                    e.step, e.total, e.seconds_per_step, unit, format_duration(eta).c_str(),
                    format_duration(e.elapsed_seconds).c_str());
    } else {
      std::snprintf(line, sizeof(line), "[%s] %s %d/%d  %.2f s/%s  ETA %s", wan::phase_name(e.phase), unit, e.step, e.total,
                    e.seconds_per_step, unit, format_duration(eta).c_str());
    }
  } else {
    std::snprintf(line, sizeof(line), "[%s] %s", wan::phase_name(e.phase), e.detail.c_str());
  }
  if (tty_) {
    if (new_phase && bar_open_) std::fputc('\n', out_);
    std::fprintf(out_, "\r\033[K%s", line);
    bar_open_ = true;
  } else {
    std::fprintf(out_, "%s\n", line);
  }
  std::fflush(out_);
}

void ProgressPrinter::finish() {
  if (tty_ && bar_open_) std::fputc('\n', out_);
  bar_open_ = false;
  std::fflush(out_);
}

}  // namespace wan_cli
