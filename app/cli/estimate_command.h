// `wan estimate`: the memory estimator's table (models x 1/2/4/8 GPUs) for a video size, dtypes and
// distributed settings, as text or JSON (--json). Same numbers as the studio's estimator table.
#pragma once
#include <CLI/CLI.hpp>

#include "job_flags.h"

namespace wan_cli {

struct EstimateOptions {
  wan::ModelFiles model;  // optional: adds the model's own row (exact sizes from its files)
  std::string size;
  int width = 832, height = 480, frames = 81;
  std::string dtype = "auto", device = "cuda";
  std::string fp8_weights = "dequantize";  // the loaded model's current row; both rows are shown when it has float8
  DistFlags dist;
  bool json = false;
  int rank = 0;       // whose memory: rank 0 also decodes
  std::string image;  // image-to-video: the size is then the largest area; the video's follows the picture
  bool t5_cpu = false, idle_expert_on_host = false;  // as `wan generate`'s flags of those names
  std::string cache;                                 // --cache: the step cache's residuals are counted
};

CLI::App* add_estimate_command(CLI::App& app, EstimateOptions& options);
int run_estimate_command(EstimateOptions& options);

}  // namespace wan_cli
