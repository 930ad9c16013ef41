#include "model/t5.h"

#include <torch/torch.h>

#include <cmath>

#include "wan/error.h"

namespace wan {

T5Config detect_t5_config(const TensorSource& src) {
  auto shape = [&](const std::string& name) -> const std::vector<std::int64_t>& {
    if (!src.contains(name))
      throw Error(ErrorCode::kModelMismatch,
                  src.path() + ": not a umT5 encoder checkpoint (tensor '" + name + "' is missing)");
    return src.info(name).shape;
  };
  T5Config c;
  const auto& emb = shape("token_embedding.weight");
  c.vocab = emb[0];
  c.dim = emb[1];
  c.dim_attn = shape("blocks.0.attn.q.weight")[0];
  c.dim_ffn = shape("blocks.0.ffn.fc1.weight")[0];
  c.shared_pos = src.contains("pos_embedding.embedding.weight");
  const auto& pos = shape(c.shared_pos ? "pos_embedding.embedding.weight" : "blocks.0.pos_embedding.embedding.weight");
  c.num_buckets = pos[0];
  c.num_heads = pos[1];
  std::int64_t layers = 0;
  while (src.contains("blocks." + std::to_string(layers) + ".norm1.weight")) ++layers;
  c.num_layers = layers;
  if (c.dim_attn % c.num_heads != 0)
    throw Error(ErrorCode::kModelMismatch, src.path() + ": T5 attention width is not divisible by its head count");
  return c;
}

torch::Tensor t5_layer_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  torch::Tensor y = x * torch::rsqrt(x.to(torch::kFloat32).pow(2).mean(-1, true) + eps);
  if (weight.scalar_type() == torch::kBFloat16 || weight.scalar_type() == torch::kFloat16)
    y = y.to(weight.scalar_type());
  return weight * y;
}

T5RelativeEmbeddingImpl::T5RelativeEmbeddingImpl(std::int64_t buckets, std::int64_t heads,
                                                 const torch::TensorOptions& options) {
  embedding = register_module("embedding", std::make_shared<torch::nn::Module>());
  weight = embedding->register_parameter("weight", uninitialized({buckets, heads}, options), false);
}

torch::Tensor T5RelativeEmbeddingImpl::forward(std::int64_t L, std::int64_t max_distance) {
  const std::int64_t num_buckets = weight.size(0) / 2;  // bidirectional
  const std::int64_t max_exact = num_buckets / 2;
  auto i64 = torch::TensorOptions().dtype(torch::kInt64);
  // rel[q, k] = k - q
  torch::Tensor rel = torch::arange(L, i64).unsqueeze(0) - torch::arange(L, i64).unsqueeze(1);
  torch::Tensor buckets = (rel > 0).to(torch::kInt64) * num_buckets;
  rel = rel.abs();
  // Same float32 math as the reference (log of 0 is discarded by the where).
  torch::Tensor large = max_exact + (torch::log(rel.to(torch::kFloat32) / static_cast<double>(max_exact)) /
                                     std::log(static_cast<double>(max_distance) / max_exact) *
                                     static_cast<double>(num_buckets - max_exact))
                                        .to(torch::kInt64);
  large = torch::min(large, torch::full_like(large, num_buckets - 1));
  buckets = buckets + torch::where(rel < max_exact, rel, large);
  // [L, L, heads] -> [1, heads, L, L]
  return weight.index_select(0, buckets.flatten().to(weight.device())).view({L, L, -1}).permute({2, 0, 1}).unsqueeze(0);
}

T5BlockImpl::T5BlockImpl(const T5Config& c, const ModelPlacement& p) : config(c) {
  norm1 = register_module("norm1", Gain(std::vector<std::int64_t>{c.dim}, p.weights()));
  auto attn = register_module("attn", std::make_shared<torch::nn::Module>());
  q = attn->register_module("q", Linear(c.dim, c.dim_attn, false, p));
  k = attn->register_module("k", Linear(c.dim, c.dim_attn, false, p));
  v = attn->register_module("v", Linear(c.dim, c.dim_attn, false, p));
  o = attn->register_module("o", Linear(c.dim_attn, c.dim, false, p));
  norm2 = register_module("norm2", Gain(std::vector<std::int64_t>{c.dim}, p.weights()));
  auto ffn = register_module("ffn", std::make_shared<torch::nn::Module>());
  auto gate = ffn->register_module("gate", std::make_shared<torch::nn::Module>());
  gate0 = gate->register_module("0", Linear(c.dim, c.dim_ffn, false, p));
  fc1 = ffn->register_module("fc1", Linear(c.dim, c.dim_ffn, false, p));
  fc2 = ffn->register_module("fc2", Linear(c.dim_ffn, c.dim, false, p));
  if (!c.shared_pos)
    pos_embedding = register_module("pos_embedding", T5RelativeEmbedding(c.num_buckets, c.num_heads, p.weights()));
}

torch::Tensor T5BlockImpl::forward(const torch::Tensor& x, const torch::Tensor& shared_bias) {
  const std::int64_t L = x.size(1), n = config.num_heads, d = config.dim_attn / config.num_heads;
  const torch::Tensor bias = config.shared_pos ? shared_bias : pos_embedding->forward(L, config.max_distance);
  const torch::Tensor h = t5_layer_norm(x, norm1->weight, config.eps);
  // [1, n, L, d]
  torch::Tensor qh = q(h).view({1, L, n, d}).transpose(1, 2);
  torch::Tensor kh = k(h).view({1, L, n, d}).transpose(1, 2);
  torch::Tensor vh = v(h).view({1, L, n, d}).transpose(1, 2);
  torch::Tensor scores = torch::matmul(qh, kh.transpose(-1, -2)) + bias.to(qh.scalar_type());  // no 1/sqrt(d)
  torch::Tensor probs = torch::softmax(scores.to(torch::kFloat32), -1).to(scores.scalar_type());
  torch::Tensor a = torch::matmul(probs, vh).transpose(1, 2).reshape({1, L, n * d});
  torch::Tensor out = x + o(a);
  const torch::Tensor h2 = t5_layer_norm(out, norm2->weight, config.eps);
  return out + fc2(fc1(h2) * gelu_tanh(gate0(h2)));
}

T5EncoderImpl::T5EncoderImpl(const T5Config& c, const ModelPlacement& p) : config(c), placement(p) {
  token_embedding = register_module("token_embedding", Gain(std::vector<std::int64_t>{c.vocab, c.dim}, p.weights()));
  if (c.shared_pos)
    pos_embedding = register_module("pos_embedding", T5RelativeEmbedding(c.num_buckets, c.num_heads, p.weights()));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (std::int64_t i = 0; i < c.num_layers; ++i) blocks->push_back(T5Block(c, p));
  norm = register_module("norm", Gain(std::vector<std::int64_t>{c.dim}, p.weights()));
}

torch::Tensor T5EncoderImpl::forward(const torch::Tensor& ids) {
  torch::NoGradGuard no_grad;
  if (ids.dim() != 1) throw Error(ErrorCode::kInvalidArgument, "T5 input ids must be 1-D");
  if (ids.numel() > 0 && (ids.min().item<std::int64_t>() < 0 || ids.max().item<std::int64_t>() >= config.vocab))
    throw Error(ErrorCode::kInvalidArgument, "token id out of range for a T5 vocabulary of " +
                                                 std::to_string(config.vocab) +
                                                 ": the tokenizer does not belong to this text encoder");
  const std::int64_t L = ids.size(0);
  ForwardScope scope(residency.get());
  torch::Tensor x = token_embedding->weight.index_select(0, ids.to(placement.device))
                        .unsqueeze(0)
                        .to(placement.compute_dtype);  // [1, L, dim]
  torch::Tensor shared = config.shared_pos ? pos_embedding->forward(L, config.max_distance) : torch::Tensor();
  for (std::size_t i = 0; i < blocks->size(); ++i) {
    if (residency) residency->before_block(static_cast<int>(i));
    x = blocks[i]->as<T5BlockImpl>()->forward(x, shared);
    if (residency) residency->after_block(static_cast<int>(i));
  }
  return t5_layer_norm(x, norm->weight, config.eps).squeeze(0).to(torch::kFloat32);
}

}  // namespace wan
