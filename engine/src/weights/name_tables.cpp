#include "weights/name_tables.h"

#include <regex>

#include "wan/error.h"

namespace wan {
namespace {

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

}  // namespace

std::optional<std::string> dit_official_name(const std::string& file_name) {
  static const std::string kPrefix = "model.diffusion_model.";
  if (starts_with(file_name, kPrefix)) return file_name.substr(kPrefix.size());
  return file_name;
}

std::optional<std::string> t5_official_name(const std::string& n) {
  if (n == "spiece_model" || n == "encoder.embed_tokens.weight") return std::nullopt;
  if (n == "shared.weight") return std::string("token_embedding.weight");
  if (n == "encoder.final_layer_norm.weight") return std::string("norm.weight");
  static const std::regex block(R"(encoder\.block\.(\d+)\.layer\.([01])\.(.+))");
  std::smatch m;
  if (!std::regex_match(n, m, block)) return n;  // official names pass through
  const std::string b = "blocks." + m[1].str() + ".";
  const std::string layer = m[2].str(), rest = m[3].str();
  static const std::unordered_map<std::string, std::string> kAttn = {
      {"layer_norm.weight", "norm1.weight"},
      {"SelfAttention.q.weight", "attn.q.weight"},
      {"SelfAttention.k.weight", "attn.k.weight"},
      {"SelfAttention.v.weight", "attn.v.weight"},
      {"SelfAttention.o.weight", "attn.o.weight"},
      {"SelfAttention.relative_attention_bias.weight", "pos_embedding.embedding.weight"},
  };
  static const std::unordered_map<std::string, std::string> kFfn = {
      {"layer_norm.weight", "norm2.weight"},
      {"DenseReluDense.wi_0.weight", "ffn.gate.0.weight"},
      {"DenseReluDense.wi_1.weight", "ffn.fc1.weight"},
      {"DenseReluDense.wo.weight", "ffn.fc2.weight"},
  };
  const auto& table = layer == "0" ? kAttn : kFfn;
  auto it = table.find(rest);
  if (it == table.end()) return n;  // unknown: reported as unexpected by the strict loader
  return b + it->second;
}

std::optional<std::string> identity_name(const std::string& n) { return n; }

RenamedSource::RenamedSource(TensorSourcePtr inner, const NameMap& map) : inner_(std::move(inner)) {
  for (const std::string& file_name : inner_->names()) {
    std::optional<std::string> official = map(file_name);
    if (!official) {
      ignored_.push_back(file_name);
      continue;
    }
    if (!to_file_.emplace(*official, file_name).second)
      throw Error(ErrorCode::kModelMismatch, inner_->path() + ": tensors '" + to_file_[*official] + "' and '" +
                                                 file_name + "' both map to '" + *official + "'");
    names_.push_back(*official);
  }
}

const std::string& RenamedSource::file_name(const std::string& name) const {
  auto it = to_file_.find(name);
  if (it == to_file_.end()) throw Error(ErrorCode::kModelMismatch, path() + ": no tensor named '" + name + "'");
  return it->second;
}

const TensorInfo& RenamedSource::info(const std::string& name) const { return inner_->info(file_name(name)); }

torch::Tensor RenamedSource::view(const std::string& name) const { return inner_->view(file_name(name)); }

}  // namespace wan
