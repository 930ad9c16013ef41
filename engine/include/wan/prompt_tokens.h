// A prompt's length in umT5 tokens, counted as the text encoder will count it: the studio's counter
// under the prompt box ("37 / 512 tokens"). No torch types.
#pragma once
#include <memory>
#include <string>

#include "wan/generation.h"

namespace wan {

struct PromptTokens {
  int tokens = 0;   // the prompt's tokens after the reference's text cleaning, plus the end mark
  int limit = 0;    // what umT5 reads: the DiT's text_len (512 in every Wan2.1 model), end mark included
  int dropped = 0;  // tokens past the limit; the engine cuts them (and says so), as the reference does
};

class Tokenizer;

// Loads the model's tokenizer once (google/umt5-xxl/spiece.model, --tokenizer, or the `spiece_model`
// tensor a ComfyUI text encoder embeds); count() is then cheap (well under a millisecond for a
// 512-token prompt). Not thread-safe: one counter per thread.
class PromptTokenCounter {
 public:
  // Throws wan::Error (kFileNotFound, kCorruptFile) when the model's files or tokenizer cannot be read.
  explicit PromptTokenCounter(const ModelFiles& files);
  ~PromptTokenCounter();
  PromptTokenCounter(const PromptTokenCounter&) = delete;
  PromptTokenCounter& operator=(const PromptTokenCounter&) = delete;

  PromptTokens count(const std::string& text) const;

 private:
  std::unique_ptr<Tokenizer> tokenizer_;
  int text_len_ = 512;
};

}  // namespace wan
