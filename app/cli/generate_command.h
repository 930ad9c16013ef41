// `wan generate`: flags -> GenerationRequest -> wan::generate, with progress on stderr.
#pragma once
#include <CLI/CLI.hpp>

#include "wan/generation.h"

namespace wan_cli {

struct GenerateOptions {
  wan::GenerationRequest request;
  std::string size;  // "W*H" or "WxH", as generate.py's --size
  // Whether --steps / --shift were given: image-to-video takes generate.py's own defaults otherwise.
  CLI::Option* steps_option = nullptr;
  CLI::Option* shift_option = nullptr;
};

CLI::App* add_generate_command(CLI::App& app, GenerateOptions& options);
int run_generate_command(GenerateOptions& options);
// Applies --size and falls back to the demo model (creating it) when no model is named. With --image
// and no --steps / --shift: 40 steps, and shift 3 at 832*480 / 480*832, as generate.py does for i2v.
void prepare_generate_request(GenerateOptions& options);
void print_generation_result(const wan::GenerationResult& result, const wan::GenerationRequest& request);
// Parses "W*H" (or "WxH") as generate.py's --size; throws wan::Error(kInvalidArgument).
void parse_size(const std::string& size, int& width, int& height);

}  // namespace wan_cli
