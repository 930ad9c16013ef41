#include "progress_printer.h"

#include <unistd.h>

#include <cmath>
#include <cstring>

#include "wan/error.h"

namespace wan_cli {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  const long s = std::lround(seconds);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof(buf), "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  else
    std::snprintf(buf, sizeof(buf), "%02ld:%02ld", s / 60, s % 60);
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
      std::snprintf(line, sizeof(line), "[%-8s] %s %d/%d  %.2f s/%s  ETA %s  elapsed %s", wan::phase_name(e.phase),
                    bar.c_str(), e.step, e.total, e.seconds_per_step, unit, format_duration(eta).c_str(),
                    format_duration(e.elapsed_seconds).c_str());
    } else {
      std::snprintf(line, sizeof(line), "[%s] %s %d/%d  %.2f s/%s  ETA %s", wan::phase_name(e.phase), unit, e.step,
                    e.total, e.seconds_per_step, unit, format_duration(eta).c_str());
    }
    // What ran the step when there is a choice (Wan2.2 A14B: "high-noise expert").
    if (!e.detail.empty() && e.phase == wan::Phase::kSampling) {
      const std::size_t used = std::strlen(line);
      std::snprintf(line + used, sizeof(line) - used, "  %s", e.detail.c_str());
    }
  } else {
    // The event's detail, or the phase in words where it has none ("[writing] writing the outputs").
    std::snprintf(line, sizeof(line), "[%s] %s", wan::phase_name(e.phase),
                  e.detail.empty() ? wan::phase_description(e.phase) : e.detail.c_str());
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

void print_generation_result(const wan::GenerationResult& r, const wan::GenerationRequest& request) {
  if (!r.video_path.empty())
    std::printf("wrote %s (%d frames, %dx%d, %d fps, seed %lld)\n", r.video_path.c_str(), r.frames, r.width, r.height,
                r.fps, static_cast<long long>(r.seed));
  if (!r.frames_dir.empty()) std::printf("wrote %d PNG frames into %s\n", r.frames, r.frames_dir.c_str());
  if (!r.latent_path.empty())
    std::printf("wrote latent %s (seed %lld)\n", r.latent_path.c_str(), static_cast<long long>(r.seed));
  if (!r.sidecar_path.empty()) std::printf("settings in %s\n", r.sidecar_path.c_str());
  std::printf("time: text %.1f s, ", r.text_seconds);
  if (!request.image.empty()) std::printf("image %.1f s, ", r.image_seconds);
  if (r.dit_forwards_cached > 0)
    std::printf("DiT load %.1f s, sampling %.1f s (%lld DiT forwards, %lld of them with the blocks from the cache), ",
                r.load_seconds, r.sampling_seconds, static_cast<long long>(r.dit_forwards),
                static_cast<long long>(r.dit_forwards_cached));
  else
    std::printf("DiT load %.1f s, sampling %.1f s (%lld DiT forwards), ", r.load_seconds, r.sampling_seconds,
                static_cast<long long>(r.dit_forwards));
  if (r.expert_swap_seconds > 0) std::printf("(of which the expert swap %.1f s), ", r.expert_swap_seconds);
  std::printf("decode %.1f s, write %.1f s\n", r.decode_seconds, r.write_seconds);
}

void ConsoleReporter::progress(const wan::ProgressEvent& event) {
  printer_(event);
  if (cancel_ && cancel_->load()) {
    printer_.finish();
    throw wan::Error(wan::ErrorCode::kCancelled, "cancelled");
  }
}

void ConsoleReporter::note(const std::string& text) {
  printer_.finish();
  std::fprintf(out_, "note: %s\n", text.c_str());
}

void ConsoleReporter::result(const wan::GenerationResult& result, const wan::GenerationRequest& request) {
  printer_.finish();
  print_generation_result(result, request);
}

}  // namespace wan_cli
