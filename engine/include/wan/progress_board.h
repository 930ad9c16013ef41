// The progress board: one POSIX shared-memory segment per run through which every rank reports its
// phase, step, speed, memory, progress marks and errors, and through which the supervisor (CLI or
// studio) asks for cancellation. Header-only types and no torch: the studio reads it from ui/.
//
// Layout (kBoardLayoutVersion): a header (magic, layout version, world size, run id, supervisor pid
// and start time, cancel flag) followed by one fixed-size slot per rank, then the live preview region. A slot is
// written by its rank alone under a seqlock (even sequence = stable); the progress mark (time of the
// last progress, the collective the rank waits in, how many it started) is a set of separate atomics
// written by the work itself (each step, frame, loaded tensor, collective), so marking never blocks
// readers and a rank stuck anywhere, a collective included, stops marking.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace wan {

constexpr std::uint32_t kBoardMagic = 0x424e4157;  // "WANB"
// 2: live preview region; 3: progress marks and collectives; 4: the supervisor's start time; 5: the
// phase's detail (which Wan2.2 expert samples).
constexpr std::uint32_t kBoardLayoutVersion = 5;
constexpr int kBoardErrorBytes = 512;
constexpr int kBoardDetailBytes = 48;
constexpr int kPreviewMaxSide = 256;  // live preview images are at most this wide and high

// The collectives of the distributed runtime (dist/communicator.h), named on the board and in hang reports.
// kRendezvous: connecting to the others through the TCPStore (waiting for them to start counts as
// waiting in a collective, not as a hang).
enum class CollectiveKind { kAllGather, kAllToAll, kBroadcast, kAllReduce, kSendRecv, kBarrier, kRendezvous, kCount };
const char* collective_name(CollectiveKind kind);  // "all_gather", ...; "none" for kCount
constexpr int kCollectiveKinds = static_cast<int>(CollectiveKind::kCount);

enum class RankState : std::int32_t { kStarting = 0, kRunning = 1, kDone = 2, kFailed = 3, kCancelled = 4 };

struct RankStatus {
  RankState state = RankState::kStarting;
  std::int32_t phase = 0;  // wan::Phase (generation.h)
  std::int32_t step = 0, total = 0;
  double seconds_per_step = 0;
  std::uint64_t memory_bytes = 0, peak_memory_bytes = 0;
  std::int32_t pid = 0;
  std::int32_t exit_code = 0;  // wan::ErrorCode of a failure
  std::string error;           // last error text (truncated to kBoardErrorBytes - 1)
  std::string detail;          // ProgressEvent::detail of the phase, e.g. "high-noise expert" (kBoardDetailBytes - 1)
  // The progress mark (ProgressBoard::mark_progress).
  std::uint64_t progress_ms = 0;  // CLOCK_MONOTONIC milliseconds of the last progress (0: none yet)
  bool in_collective = false;     // waiting in `collective` now
  CollectiveKind collective = CollectiveKind::kCount;  // the latest collective started (kCount: none yet)
  std::uint64_t collectives = 0;                       // collectives started so far (the number of `collective`)
};

// What a rank's progress mark says, as ProgressBoard::mark_progress takes it.
struct ProgressMark {
  std::uint64_t ms = 0;
  bool in_collective = false;
  CollectiveKind collective = CollectiveKind::kCount;
  std::uint64_t collectives = 0;
};

// The live preview of the sampling: an RGB image (rows of width * 3 bytes) of the current latent.
struct PreviewImage {
  std::int32_t step = 0, total = 0;
  std::int32_t width = 0, height = 0;
  std::vector<std::uint8_t> rgb;
  std::uint32_t sequence = 0;  // changes with every publish (0: none yet)
};

class ProgressBoard {
 public:
  // Shared-memory object name for a run id ("/wan-studio-<run id>"). Run ids: letters, digits, '-', '_'.
  static std::string segment_name(const std::string& run_id);

  // Supervisor: creates the segment (a stale one of the same name, whose supervisor is gone, is
  // removed first; a live one is an error). The creator unlinks it on destruction.
  static ProgressBoard create(const std::string& run_id, int world_size);
  // Worker or viewer: maps an existing segment, checking magic, layout version and size.
  static ProgressBoard open(const std::string& run_id);
  // Removes every board whose supervisor process no longer exists; returns how many.
  static int remove_stale();

  ProgressBoard(ProgressBoard&& other) noexcept;
  ProgressBoard& operator=(ProgressBoard&& other) noexcept;
  ProgressBoard(const ProgressBoard&) = delete;
  ProgressBoard& operator=(const ProgressBoard&) = delete;
  ~ProgressBoard();

  int world_size() const;
  std::string run_id() const;
  std::int32_t supervisor_pid() const;

  void publish(int rank, const RankStatus& status);  // by that rank only
  RankStatus read(int rank) const;                   // consistent snapshot
  // By that rank's work (never a side thread): it made progress at mark.ms; lock-free.
  void mark_progress(int rank, const ProgressMark& mark);

  // The preview: written by the output rank (at most kPreviewMaxSide per side), read by the studio.
  void publish_preview(const PreviewImage& image);
  bool read_preview(PreviewImage* image) const;  // false while none was published

  void request_cancel();
  bool cancel_requested() const;

  // Unlinks the segment now (the mapping stays valid). Idempotent.
  void unlink();

  static std::uint64_t monotonic_ms();

 private:
  ProgressBoard() = default;
  void release();
  void* base_ = nullptr;
  std::size_t bytes_ = 0;
  std::string name_;
  bool owner_ = false;
};

}  // namespace wan
