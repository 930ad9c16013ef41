#include "core/progress_mark.h"

#include <atomic>

namespace wan {
namespace {

std::atomic<std::uint64_t> g_ms{0};
std::atomic<bool> g_in_collective{false};
std::atomic<int> g_collective{static_cast<int>(CollectiveKind::kCount)};
std::atomic<std::uint64_t> g_collectives{0};
std::atomic<int> g_phase{0}, g_step{0}, g_total{0};
std::atomic<ProgressBoard*> g_board{nullptr};
std::atomic<int> g_rank{0};

void publish() {
  g_ms.store(ProgressBoard::monotonic_ms(), std::memory_order_relaxed);
  if (ProgressBoard* board = g_board.load(std::memory_order_acquire))
    board->mark_progress(g_rank.load(), current_progress().mark);
}

}  // namespace

void note_progress() { publish(); }

void note_phase(Phase phase, int step, int total) {
  g_phase.store(static_cast<int>(phase), std::memory_order_relaxed);
  g_step.store(step, std::memory_order_relaxed);
  g_total.store(total, std::memory_order_relaxed);
  publish();
}

void note_collective_begin(CollectiveKind kind) {
  g_collective.store(static_cast<int>(kind), std::memory_order_relaxed);
  g_collectives.fetch_add(1, std::memory_order_relaxed);
  g_in_collective.store(true, std::memory_order_relaxed);
  publish();
}

void note_collective_end() {
  g_in_collective.store(false, std::memory_order_relaxed);
  publish();
}

ProcessProgress current_progress() {
  ProcessProgress p;
  p.mark.ms = g_ms.load(std::memory_order_relaxed);
  p.mark.in_collective = g_in_collective.load(std::memory_order_relaxed);
  p.mark.collective = static_cast<CollectiveKind>(g_collective.load(std::memory_order_relaxed));
  p.mark.collectives = g_collectives.load(std::memory_order_relaxed);
  p.phase = static_cast<Phase>(g_phase.load(std::memory_order_relaxed));
  p.step = g_step.load(std::memory_order_relaxed);
  p.total = g_total.load(std::memory_order_relaxed);
  return p;
}

void mirror_progress_to(ProgressBoard* board, int rank) {
  g_rank.store(rank);
  g_board.store(board, std::memory_order_release);
  if (board) publish();
}

}  // namespace wan
