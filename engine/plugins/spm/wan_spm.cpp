#include "wan_spm.h"

#include <sentencepiece_processor.h>

#include <cstring>
#include <string>
#include <vector>

namespace {
void set_err(char* err, size_t n, const std::string& msg) {
  if (err == nullptr || n == 0) return;
  std::strncpy(err, msg.c_str(), n - 1);
  err[n - 1] = '\0';
}
}  // namespace

extern "C" {

void* wan_spm_load(const char* model_proto, size_t size, char* err, size_t err_size) {
  auto* sp = new sentencepiece::SentencePieceProcessor();
  const auto status = sp->LoadFromSerializedProto(std::string(model_proto, size));
  if (!status.ok()) {
    set_err(err, err_size, status.ToString());
    delete sp;
    return nullptr;
  }
  return sp;
}

void wan_spm_free(void* handle) { delete static_cast<sentencepiece::SentencePieceProcessor*>(handle); }

void wan_spm_info(void* handle, int* pad_id, int* eos_id, int* vocab_size) {
  auto* sp = static_cast<sentencepiece::SentencePieceProcessor*>(handle);
  *pad_id = sp->pad_id();
  *eos_id = sp->eos_id();
  *vocab_size = sp->GetPieceSize();
}

int wan_spm_encode(void* handle, const char* text, int* ids, int capacity, char* err, size_t err_size) {
  auto* sp = static_cast<sentencepiece::SentencePieceProcessor*>(handle);
  std::vector<int> pieces;
  const auto status = sp->Encode(text, &pieces);
  if (!status.ok()) {
    set_err(err, err_size, status.ToString());
    return -1;
  }
  for (int i = 0; i < static_cast<int>(pieces.size()) && i < capacity; ++i) ids[i] = pieces[i];
  return static_cast<int>(pieces.size());
}

}  // extern "C"
