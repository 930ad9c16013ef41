// The command-line edge of a Job: the flags of `wan generate` (and of `wan-worker ... generate` under
// torchrun, srun or mpirun) parsed into a wan::Job, once. Defaults are not decided here: a flag not
// given stays "not given" and the engine resolves it (wan::resolve_defaults). Shared by `wan` and
// `wan-worker` (the wan_cmdline library, app/cmdline/); no torch.
#pragma once
#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

#include "wan/job.h"

namespace wan_cli {

// The distributed flags of `wan generate` (one wan-worker per rank on this machine). Numbers not given
// stay unset; a number given is checked, never taken for "not given".
struct DistFlags {
  std::optional<int> world_size, ulysses, ring, master_port, hang_timeout;
  std::vector<std::string> config_files;  // --dist-config, each applied over the one before
  std::string backend, sharding, run_id;
  bool cfg_parallel = false, dit_fsdp = false, t5_fsdp = false;
  // Whether the run goes through the launcher (a world other than 1, a config or a layout was asked for).
  bool distributed() const {
    return (world_size && *world_size != 1) || !config_files.empty() || ulysses || ring || cfg_parallel || dit_fsdp ||
           t5_fsdp;
  }
};

struct JobFlags {
  wan::GenerationRequest request;
  std::string size;               // "W*H" or "WxH", as generate.py's --size
  std::string seed;               // --seed as typed (checked in job_from_flags: -1 .. 2^63-1)
  std::string sampler = "unipc";  // --sampler, --dtype, --device: parsed into the request's types
  std::string dtype = "auto", device = "cpu";
  std::string fp8_weights = "dequantize";  // --fp8-weights
  int steps = 0;                           // bound to --steps; used when given
  double shift = 0;
  std::string guidance;  // --guidance G, or LOW,HIGH for Wan2.2 A14B's two experts (parsed in job_from_flags)
  std::string denoising_step_list;  // --denoising-step-list 1000,750,500,250 (the distill sampler's)
  std::string cache;                // --cache teacache:0.2 | magcache:0.12 | none
  int fps = 16;                     // bound to --fps; used when given (else the model's: 16, TI2V-5B 24)
  CLI::Option *steps_option = nullptr, *shift_option = nullptr, *guidance_option = nullptr, *fps_option = nullptr;
  std::vector<std::string> loras;                  // --lora FILE[:STRENGTH], as typed (parsed in job_from_flags)
  std::vector<std::string> loras_high, loras_low;  // --lora-high / --lora-low (Wan2.2 A14B's experts)
  bool t5_cpu = false;                             // --t5-cpu: the config's t5_cpu
  bool idle_expert_on_host = false;                // --idle-expert-on-host: the config's idle_expert_on_host
  std::string write_job;  // --write-job FILE: write the job and stop (for torchrun, srun, mpirun)
  DistFlags dist;
};

// `generate` and its flags (request flags; `with_dist`: the distributed flags too).
CLI::App* add_generate_command(CLI::App& app, JobFlags& flags, bool with_dist = true);

// The distributed flags (on `generate` and `estimate`).
void add_distributed_options(CLI::App* cmd, DistFlags& flags);
// --dist-config (or `base`), then the flags over it; the backend resolved for `device`.
wan::DistConfig dist_config_from_flags(const DistFlags& flags, const wan::Device& device,
                                       const wan::DistConfig& base = wan::DistConfig{});

// The job the flags describe: --dist-config (or `base`), then the flags over it; the request's
// "not given" fields stay unset. Throws wan::Error(kInvalidArgument) for a malformed --size or value.
wan::Job job_from_flags(const JobFlags& flags, const wan::DistConfig& base = wan::DistConfig{});

// --lora FILE or FILE:STRENGTH (a colon followed by a number), for `expert` (the flag named in errors:
// --lora, --lora-high or --lora-low); throws wan::Error(kInvalidArgument) for a strength that is not
// finite or beyond +-100.
wan::LoraFile parse_lora(const std::string& given, wan::LoraExpert expert = wan::LoraExpert::kBoth);

// Parses "W*H" (or "WxH") as generate.py's --size; throws wan::Error(kInvalidArgument).
void parse_size(const std::string& size, int& width, int& height);

// The job with every file path made absolute (model files, picture, outputs, latents): a job file is
// read by ranks that may start in another folder.
wan::Job with_absolute_paths(wan::Job job);

// Parses argv with `app`. A parse error becomes one line "wan: error: ..." on stderr and exit code 2
// (kInvalidArgument), as every other invalid setting; --help and --version print and give 0. Returns
// -1 when parsing succeeded and the program goes on, else the exit code.
int parse_command_line(CLI::App& app, int argc, char** argv);

}  // namespace wan_cli
