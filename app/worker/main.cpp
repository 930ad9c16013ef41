// `wan-worker`: one rank of a run. Wan Studio's launcher starts it with the run's job file:
//   wan-worker --threads N --job /tmp/wan-job-<pid>-<run>/job.json
// torchrun, srun and mpirun start it with a distributed config and the flags of `wan generate` (the
// rank and the rendezvous come from the environment, wan/worker_env.h):
//   torchrun --nproc_per_node=2 build/bin/wan-worker --dist-config resources/presets/2-gpu.json \
//     generate --model DIR --prompt "..." --output out.mp4
// or with a job file written by `wan generate --write-job FILE`. The rank's contract is the engine's
// (wan/rank.h: run_rank); this program only reads the command line.
#include <CLI/CLI.hpp>

#include "job_flags.h"
#include "progress_printer.h"
#include "wan/error.h"
#include "wan/rank.h"
#include "wan/types.h"
#include "wan/version.h"

int main(int argc, char** argv) {
  CLI::App app{"wan-worker: one rank of a distributed Wan generation (torchrun, srun, mpirun or wan's launcher)"};
  app.set_version_flag("--version", [] { return wan::build_info_text(wan::build_info()); });
  int threads = 0;
  std::string job_file;
  std::vector<std::string> dist_configs;
  app.add_option("--threads", threads, "CPU threads for LibTorch (default: all cores)")
      ->check(CLI::Range(0, wan::kMaxThreads));
  app.add_option("--job", job_file, "the run's job file (written by wan's launcher or `wan generate --write-job`)");
  app.add_option("--dist-config", dist_configs,
                 "distributed config JSON for `generate` (several: each over the one "
                 "before); its world_size must match");
  wan_cli::JobFlags flags;
  CLI::App* generate = wan_cli::add_generate_command(app, flags);  // the same flags as `wan generate`
  if (const int code = wan_cli::parse_command_line(app, argc, argv); code >= 0) return code;
  wan::Job job;
  try {
    if (job_file.empty() == !generate->parsed() || (!job_file.empty() && !dist_configs.empty()))
      throw wan::Error(wan::ErrorCode::kInvalidArgument,
                       "give either --job FILE, or [--dist-config FILE] generate <flags>");
    if (!flags.write_job.empty() || flags.dist.master_port)
      throw wan::Error(wan::ErrorCode::kInvalidArgument,
                       "a rank takes neither --write-job (use `wan generate`) nor "
                       "--master-port (the launcher sets MASTER_PORT)");
    if (!job_file.empty()) {
      job = wan::load_job(job_file);
    } else {
      wan::DistConfig base;
      base.world_size = wan::worker_env_from_process().world_size;  // without a config: the launcher's world
      flags.dist.config_files.insert(flags.dist.config_files.begin(), dist_configs.begin(), dist_configs.end());
      job = wan_cli::job_from_flags(flags, base);
    }
  } catch (const wan::Error& e) {
    std::fprintf(stderr, "wan: error: %s\n", e.what());
    return static_cast<int>(e.code());
  }
  wan_cli::ConsoleReporter console(stderr);
  return wan::run_worker(job, threads, &console);
}
