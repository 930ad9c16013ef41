#include "weights/loader.h"

#include <torch/torch.h>

#include <filesystem>
#include <set>

#include "core/progress_mark.h"
#include "wan/error.h"
#include "weights/gguf_file.h"
#include "weights/mapped_file.h"
#include "weights/pth_file.h"
#include "weights/safetensors.h"
#include "weights/scaled_fp8.h"
#include "weights/zip_archive.h"

namespace wan {
namespace fs = std::filesystem;

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string list_some(const std::vector<std::string>& names) {
  std::string out;
  const std::size_t shown = std::min<std::size_t>(names.size(), 6);
  for (std::size_t i = 0; i < shown; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > shown) out += " (and " + std::to_string(names.size() - shown) + " more)";
  return out;
}

}  // namespace

namespace {
TensorSourcePtr open_file(const std::string& path) {
  if (!fs::exists(path)) throw Error(ErrorCode::kFileNotFound, path + ": no such file");
  if (ends_with(path, ".json")) return ShardedSafetensors::open(path);
  if (ends_with(path, ".gguf")) return GgufFile::open(path);
  if (ends_with(path, ".safetensors")) return SafetensorsFile::open(path);
  if (ends_with(path, ".pth") || ends_with(path, ".pt") || ends_with(path, ".bin") || ends_with(path, ".ckpt"))
    return PthFile::open(path);
  auto probe = MappedFile::open(path);
  if (looks_like_zip(*probe)) return PthFile::open(path);
  if (looks_like_gguf(*probe)) return GgufFile::open(path);
  return SafetensorsFile::open(path);
}
}  // namespace

TensorSourcePtr open_weights(const std::string& path) {
  return with_fp8_scales_applied(open_file(path));  // fp8_scaled files read as the weights they stand for
}

namespace {
std::vector<std::pair<std::string, torch::Tensor>> checked_targets(torch::nn::Module& module,
                                                                   const TensorSource& source,
                                                                   const std::string& what) {
  std::vector<std::pair<std::string, torch::Tensor>> targets;
  for (const auto& item : module.named_parameters(true)) targets.emplace_back(item.key(), item.value());
  for (const auto& item : module.named_buffers(true)) targets.emplace_back(item.key(), item.value());
  std::set<std::string> wanted;
  std::vector<std::string> missing, unexpected;
  for (const auto& [name, t] : targets) {
    wanted.insert(name);
    if (!source.contains(name)) missing.push_back(name);
  }
  for (const std::string& name : source.names())
    if (!wanted.count(name)) unexpected.push_back(name);
  if (!missing.empty() || !unexpected.empty()) {
    std::string msg = source.path() + ": does not match the " + what + " model:";
    if (!missing.empty())
      msg += " missing " + std::to_string(missing.size()) + " tensor(s): " + list_some(missing) + ";";
    if (!unexpected.empty())
      msg += " unexpected " + std::to_string(unexpected.size()) + " tensor(s): " + list_some(unexpected) + ";";
    msg += " is this the right file for the " + what + "?";
    throw Error(ErrorCode::kModelMismatch, msg);
  }
  for (auto& [name, target] : targets) {
    const TensorInfo& ti = source.info(name);
    if (torch::IntArrayRef(ti.shape) != target.sizes())
      throw Error(ErrorCode::kModelMismatch, ti.file + ": tensor '" + name + "' has shape " + shape_text(ti.shape) +
                                                 " but the " + what + " model expects " +
                                                 shape_text(target.sizes().vec()));
  }
  return targets;
}
}  // namespace

torch::Tensor stored_value(const TensorSource& source, const std::string& name, torch::ScalarType target) {
  if (!c10::isFloat8Type(target)) return source.view(name);
  std::optional<Float8Weight> f = source.float8_weight(name);
  if (!f || f->q.scalar_type() != target)
    throw Error(ErrorCode::kInternal, source.path() + ": '" + name + "' is no longer the float8 tensor it was");
  return f->q;
}

torch::Tensor stored_range(const TensorSource& source, const std::string& name, torch::ScalarType target,
                           std::int64_t offset, std::int64_t count) {
  if (c10::isFloat8Type(target)) return stored_value(source, name, target).reshape({-1}).narrow(0, offset, count);
  return source.flat_range(name, offset, count);
}

void check_strict(torch::nn::Module& module, const TensorSource& source, const std::string& what) {
  checked_targets(module, source, what);
}

void load_strict(torch::nn::Module& module, const TensorSource& source, const std::string& what) {
  auto targets = checked_targets(module, source, what);
  torch::NoGradGuard no_grad;
  for (auto& [name, target] : targets) {
    target.copy_(stored_value(source, name, target.scalar_type()));
    source.release_pages_of(name);
    note_progress();  // the watchdog's mark: a 14B checkpoint takes minutes to read
  }
}

}  // namespace wan
