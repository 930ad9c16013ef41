// wan-spm-train KEY=VALUE...: trains a SentencePiece model (SentencePieceTrainer kwargs, e.g.
// input=corpus.txt model_prefix=out/spiece vocab_size=1000). A separate process: see wan_spm.h.
#include <sentencepiece_trainer.h>

#include <cstdio>
#include <string>
#include <unordered_map>

int main(int argc, char** argv) {
  std::unordered_map<std::string, std::string> kwargs;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto eq = arg.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::fprintf(stderr, "wan-spm-train: expected KEY=VALUE, got '%s'\n", argv[i]);
      return 2;
    }
    kwargs[arg.substr(0, eq)] = arg.substr(eq + 1);
  }
  const auto status = sentencepiece::SentencePieceTrainer::Train(kwargs);
  if (!status.ok()) {
    std::fprintf(stderr, "wan-spm-train: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
