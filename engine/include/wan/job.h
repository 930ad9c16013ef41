// One run as a single document: the request (what to make), the distributed config (how the ranks
// share the work and where each model runs) and the run id (which progress board to report to). The
// CLI and the studio build a Job; the launcher writes it to one file that every rank reads
// (`wan-worker --job FILE`); the sidecar beside each video, the studio's history re-run and its saved
// settings use this same codec. No torch types: the studio includes it.
//
// JSON (format "wan-studio-job/1"):
//   {"format": "wan-studio-job/1", "run_id": "...", "request": {<request fields>}, "config": {<dist config>}}
// Request fields, each optional when read (absent: the base's value): prompt, negative_prompt, image,
// width, height, frames, steps, shift, guidance (null: the task's default), seed, sampler, dtype,
// fp8_weights, device, cpu_noise, model {model_dir, dit, t5, vae, tokenizer, clip}, output, frames_dir,
// save_latent, decode_latent, fps, crf. The config's fields are those of dist_config.h.
#pragma once
#include <string>

#include "wan/dist_config.h"
#include "wan/generation.h"

namespace wan {

constexpr const char* kJobFormat = "wan-studio-job/1";

struct Job {
  std::string run_id;  // the progress board ("" for a run nobody supervises: torchrun, srun, mpirun)
  GenerationRequest request;
  DistConfig config;
};

// Every field, pretty-printed; optional fields that are not given are written as null.
std::string request_to_json(const GenerationRequest& request);
// The fields present in `json_text` over `base`. Unknown fields, wrong types and malformed JSON throw
// wan::Error(kInvalidArgument) naming the field.
GenerationRequest request_from_json(const std::string& json_text, const GenerationRequest& base = GenerationRequest{});

std::string job_to_json(const Job& job);
Job job_from_json(const std::string& json_text);  // throws wan::Error(kInvalidArgument)
// Throws wan::Error(kFileNotFound / kIo / kInvalidArgument) naming the path.
Job load_job(const std::string& path);
// Written atomically (a temporary name, then renamed): a reader never sees half a job.
void save_job(const std::string& path, const Job& job);

// The request and config a sidecar (the JSON written beside each video) records, for a re-run: the
// request as it ran (its seed fixed, its defaults resolved), the config it ran with. Reads the
// current sidecar format and the first one (flat fields, before the job codec). Throws
// wan::Error(kInvalidArgument) when the text is not a sidecar.
Job job_from_sidecar(const std::string& json_text);

}  // namespace wan
