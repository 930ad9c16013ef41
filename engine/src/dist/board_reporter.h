// A rank's writer of its own slot on the run's progress board: state, phase, step, speed, memory,
// the live preview and the final state; and the board's cancel flag. While it lives, every progress
// mark of the process (core/progress_mark.h) is mirrored into the slot, so the launcher's watchdog
// sees the rank's work, collectives included. No torch.
#pragma once
#include <cstdint>
#include <string>

#include "wan/generation.h"
#include "wan/progress_board.h"

namespace wan {

class BoardReporter {
 public:
  // Opens the board of `run_id` (wan::Error(kFileNotFound) when the launcher made none) and marks the
  // rank running with this process's pid.
  BoardReporter(const std::string& run_id, int rank);
  ~BoardReporter();  // stops mirroring progress marks
  BoardReporter(const BoardReporter&) = delete;
  BoardReporter& operator=(const BoardReporter&) = delete;

  // Publishes the event with the rank's memory now and its peak (bytes). Throws
  // wan::Error(kCancelled) when the supervisor asked to cancel.
  void progress(const ProgressEvent& event, std::uint64_t memory_bytes, std::uint64_t peak_memory_bytes);
  void preview(const PreviewImage& image);
  // The last word: done, failed (with the wan::ErrorCode and message) or cancelled.
  void finish(RankState state, int exit_code, const std::string& error);

 private:
  ProgressBoard board_;
  int rank_;
  RankStatus status_;
};

}  // namespace wan
