#include "dist/board_reporter.h"

#include <unistd.h>

#include "core/progress_mark.h"
#include "wan/error.h"

namespace wan {

BoardReporter::BoardReporter(const std::string& run_id, int rank) : board_(ProgressBoard::open(run_id)), rank_(rank) {
  if (rank < 0 || rank >= board_.world_size())
    throw Error(ErrorCode::kInvalidArgument, "rank " + std::to_string(rank) +
                                                 " does not fit the progress board of run " + run_id + " (world size " +
                                                 std::to_string(board_.world_size()) + ")");
  status_.pid = static_cast<std::int32_t>(getpid());
  status_.state = RankState::kRunning;
  board_.publish(rank_, status_);
  mirror_progress_to(&board_, rank_);
}

BoardReporter::~BoardReporter() { mirror_progress_to(nullptr, 0); }

void BoardReporter::progress(const ProgressEvent& e, std::uint64_t memory_bytes, std::uint64_t peak_memory_bytes) {
  status_.phase = static_cast<std::int32_t>(e.phase);
  status_.step = e.step;
  status_.total = e.total;
  status_.seconds_per_step = e.seconds_per_step;
  status_.detail = e.detail;
  status_.memory_bytes = memory_bytes;
  status_.peak_memory_bytes = peak_memory_bytes;
  board_.publish(rank_, status_);
  if (board_.cancel_requested()) throw Error(ErrorCode::kCancelled, "cancelled");
}

void BoardReporter::preview(const PreviewImage& image) { board_.publish_preview(image); }

void BoardReporter::finish(RankState state, int exit_code, const std::string& error) {
  status_.state = state;
  status_.exit_code = exit_code;
  status_.error = error;
  board_.publish(rank_, status_);
}

}  // namespace wan
