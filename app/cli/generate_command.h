// `wan generate`: the flags into one Job, then the run: in this process (run_rank, a world of one), or
// one wan-worker per rank through the engine's launcher (launch_job) when a world, a config or a
// layout is asked for, with each rank's status on stderr. Ctrl-C cancels the run.
#pragma once
#include "job_flags.h"

namespace wan_cli {

int run_generate_command(const JobFlags& flags);

}  // namespace wan_cli
