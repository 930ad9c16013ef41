// A rank's status in plain words for the progress bars: "rank 0: loading the DiT", "rank 1: sampling
// step 3/10 · 2.1 s/step · 1.40 GiB", "rank 0: decoding frame 2/5 · 0.8 s/frame". The studio words the
// engine's phases itself (wan::format_rank_status is the CLI's line).
#pragma once
#include <QString>

#include "wan/progress_board.h"

namespace wan_ui {

QString rankStatusText(int rank, const wan::RankStatus& status);

}  // namespace wan_ui
