// Fuzz target: the JSON the studio, the CLI and the workers exchange: a job file, a request, and a
// sidecar (the file beside each video that the history re-runs). What parses must write back and parse
// again to the same text (the codec is a round trip).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "fuzz_util.h"
#include "wan/job.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  wan::fuzz::refuse_or_accept([&] {
    const wan::Job job = wan::job_from_json(text);
    const std::string once = wan::job_to_json(job);
    const std::string twice = wan::job_to_json(wan::job_from_json(once));
    if (once != twice) {
      std::fprintf(stderr, "fuzz: the job codec is not a round trip:\n%s\n%s\n", once.c_str(), twice.c_str());
      std::abort();
    }
  });
  wan::fuzz::refuse_or_accept([&] { (void)wan::request_to_json(wan::request_from_json(text)); });
  wan::fuzz::refuse_or_accept([&] { (void)wan::job_to_json(wan::job_from_sidecar(text)); });
  return 0;
}
