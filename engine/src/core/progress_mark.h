// This process's progress, recorded by the work itself: the generation's progress events (each
// phase, sampling step and decoded frame), each tensor the loaders read, and the start and end of
// each collective. The watchdogs read it: the launcher's through the progress board (each mark is
// mirrored into the rank's slot) and, where no launcher watches (torchrun, srun, mpirun), the
// worker's own (dist/watchdog.h). A rank stuck anywhere, inside a collective included, stops marking;
// nothing marks from a side thread. No torch.
//
// Thread safety: marks come from the threads doing the work; reads from any thread (each value is
// its own atomic, so a read may mix two consecutive marks, which the watchdogs tolerate).
#pragma once
#include <cstdint>

#include "wan/generation.h"
#include "wan/progress_board.h"

namespace wan {

void note_progress();                               // now
void note_phase(Phase phase, int step, int total);  // a progress event of the generation (also a mark)
void note_collective_begin(CollectiveKind kind);
void note_collective_end();

struct ProcessProgress {
  ProgressMark mark;
  Phase phase = Phase::kNone;
  int step = 0, total = 0;
};
ProcessProgress current_progress();

// Mirrors every mark into `rank`'s slot of `board` from now on (null: stop). The caller keeps the
// board mapped while mirroring.
void mirror_progress_to(ProgressBoard* board, int rank);

}  // namespace wan
