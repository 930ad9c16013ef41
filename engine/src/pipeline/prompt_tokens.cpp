#include "wan/prompt_tokens.h"

#include <torch/torch.h>

#include "model/dit_config.h"
#include "model/tokenizer.h"
#include "pipeline/model_folder.h"
#include "wan/error.h"
#include "weights/file_util.h"
#include "weights/loader.h"

namespace wan {

PromptTokenCounter::PromptTokenCounter(const ModelFiles& files) {
  const ResolvedModel r = resolve_model_files(files);
  if (!r.dit_config.empty())
    text_len_ = static_cast<int>(dit_config_from_json(read_text_file(r.dit_config), r.dit_config).text_len);
  if (!r.tokenizer.empty()) {
    tokenizer_ = Tokenizer::from_file(r.tokenizer);
    return;
  }
  // A ComfyUI text encoder carries its tokenizer as a uint8 tensor (model_files.cpp load_t5).
  const TensorSourcePtr t5 = open_weights(r.t5);
  if (!t5->contains("spiece_model"))
    throw Error(ErrorCode::kFileNotFound, r.t5 + " has no embedded tokenizer: give the tokenizer (spiece.model)");
  const torch::Tensor bytes = t5->view("spiece_model").contiguous().to(torch::kUInt8);
  const std::string proto(reinterpret_cast<const char*>(bytes.data_ptr()), static_cast<std::size_t>(bytes.numel()));
  tokenizer_ = Tokenizer::from_serialized(proto, r.t5 + " (spiece_model)");
}

PromptTokenCounter::~PromptTokenCounter() = default;

PromptTokens PromptTokenCounter::count(const std::string& text) const {
  const TokenizedText t = tokenizer_->encode(text, text_len_);
  PromptTokens out;
  out.limit = text_len_;
  out.dropped = static_cast<int>(t.dropped_tokens);
  out.tokens = static_cast<int>(t.valid_tokens + t.dropped_tokens);
  return out;
}

}  // namespace wan
