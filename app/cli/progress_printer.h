// Terminal progress for the CLI: one redrawn bar on a terminal, plain lines otherwise (logs, pipes).
#pragma once
#include <cstdio>
#include <string>

#include "wan/generation.h"

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

}  // namespace wan_cli
