// Reference-case evaluation (`wan eval-case`): runs one fixture folder (config.json, weights,
// io.safetensors, case.json) and writes every output tensor it lists. No torch types here.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "wan/generation.h"

namespace wan {

struct EvalCaseOptions {
  std::string dtype = "fp32";  // fp32 | bf16 | fp16
  std::string device = "cpu";  // cpu | cuda | cuda:N
};

struct EvalCaseResult {
  std::string kind;  // the case's _class_name
  // For every output written: relative L2 error ||out - ref|| / ||ref|| against io.safetensors.
  std::vector<std::pair<std::string, double>> relative_errors;
};

// Throws wan::Error naming the case folder and the problem.
EvalCaseResult run_eval_case(const std::string& case_dir, const std::string& out_path, const EvalCaseOptions& options);

// The generation request of a whole-pipeline case folder (its run.json; the folder is the model).
// `mode` ("t2v", "i2v"): a case holding both (TI2V-5B), the settings of that mode over the shared ones;
// throws wan::Error(kInvalidArgument) when run.json has none for it.
GenerationRequest pipeline_case_request(const std::string& case_dir, const std::string& dtype = "fp32",
                                        const std::string& device = "cpu", const std::string& mode = "");

}  // namespace wan
