// Terminal progress for the CLI: one redrawn bar on a terminal, plain lines otherwise (logs, pipes).
#pragma once
#include <atomic>
#include <cstdio>
#include <string>

#include "wan/generation.h"
#include "wan/rank.h"

namespace wan_cli {

class ProgressPrinter {
 public:
  explicit ProgressPrinter(std::FILE* out);
  void operator()(const wan::ProgressEvent& e);
  // Ends a bar line so the next output starts on a fresh line.
  void finish();

 private:
  std::FILE* out_;
  bool tty_;
  bool bar_open_ = false;
  wan::Phase last_phase_ = wan::Phase::kNone;
  int last_step_ = -1;
};

std::string format_duration(double seconds);

// What rank 0 wrote, on stdout: the video, frames, latent, sidecar and the time of each stage.
void print_generation_result(const wan::GenerationResult& result, const wan::GenerationRequest& request);

// The console as a rank's reporter (a run in one process, or rank 0 under torchrun, srun, mpirun):
// the progress bar or lines on `out`, notes, and the result.
// `cancel` (optional): when set (e.g. by SIGINT), the next progress event throws
// wan::Error(kCancelled), which stops the run at the end of the current step.
class ConsoleReporter : public wan::RankReporter {
 public:
  explicit ConsoleReporter(std::FILE* out, const std::atomic<bool>* cancel = nullptr)
      : out_(out), printer_(out), cancel_(cancel) {}
  ~ConsoleReporter() override { printer_.finish(); }
  void progress(const wan::ProgressEvent& event) override;
  void note(const std::string& text) override;
  void result(const wan::GenerationResult& result, const wan::GenerationRequest& request) override;

 private:
  std::FILE* out_;
  ProgressPrinter printer_;
  const std::atomic<bool>* cancel_;
};

}  // namespace wan_cli
