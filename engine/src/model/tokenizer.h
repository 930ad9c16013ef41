// umT5 tokenizer (SentencePiece): from google/umt5-xxl/spiece.model in an official folder, or from
// the serialized model that ComfyUI text-encoder files embed as the `spiece_model` tensor.
// SentencePiece runs inside the libwan_spm plugin (see engine/plugins/spm/wan_spm.h).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace wan {

struct TokenizedText {
  std::vector<std::int64_t> ids;    // padded / truncated to text_len
  std::int64_t dropped_tokens = 0;  // tokens past text_len - 1 (the reference truncates silently)
  std::int64_t valid_tokens = 0;    // real tokens including EOS (the attention mask's sum)
};

class Tokenizer {
 public:
  // Throws wan::Error(kCorruptFile / kFileNotFound) naming the source.
  static std::unique_ptr<Tokenizer> from_file(const std::string& path);
  static std::unique_ptr<Tokenizer> from_serialized(const std::string& model_proto, const std::string& context);
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Cleans the text like the reference, encodes it, appends EOS, pads with pad_id or truncates
  // (keeping EOS last) to text_len.
  TokenizedText encode(const std::string& text, std::int64_t text_len) const;
  std::int64_t vocab_size() const { return vocab_size_; }
  std::int64_t pad_id() const { return pad_id_; }
  std::int64_t eos_id() const { return eos_id_; }

 private:
  Tokenizer() = default;
  void* handle_ = nullptr;
  std::int64_t pad_id_ = 0;
  std::int64_t eos_id_ = 1;
  std::int64_t vocab_size_ = 0;
};

// Trains a SentencePiece model (the demo model's tokenizer) in the wan-spm-train helper process;
// options are SentencePieceTrainer's (input, model_prefix, vocab_size, ...). Throws wan::Error.
void train_sentencepiece(const std::map<std::string, std::string>& options);

}  // namespace wan
