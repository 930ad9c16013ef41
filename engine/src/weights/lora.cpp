#include "weights/lora.h"

#include <torch/torch.h>

#include <cmath>
#include <map>
#include <utility>

#include "wan/error.h"
#include "weights/loader.h"

namespace wan {

const char* lora_expert_name(LoraExpert expert) {
  switch (expert) {
    case LoraExpert::kHighNoise:
      return "high_noise";
    case LoraExpert::kLowNoise:
      return "low_noise";
    case LoraExpert::kBoth:
      break;
  }
  return "both";
}

LoraExpert parse_lora_expert(const std::string& name) {
  for (LoraExpert e : {LoraExpert::kBoth, LoraExpert::kHighNoise, LoraExpert::kLowNoise})
    if (name == lora_expert_name(e)) return e;
  throw Error(ErrorCode::kInvalidArgument,
              "unknown LoRA expert '" + name + "': use both, high_noise or low_noise (Wan2.2 A14B's experts)");
}

namespace {

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

enum class Part { kUp, kDown, kAlpha, kDiff, kDiffBias, kDora, kOtherAdapter, kUnknown };

// The module part of a key and what the entry is.
std::pair<std::string, Part> split_key(const std::string& key) {
  static const std::pair<const char*, Part> kSuffixes[] = {
      {".lora_A.default.weight", Part::kDown},
      {".lora_B.default.weight", Part::kUp},
      {".lora_down.weight", Part::kDown},
      {".lora_up.weight", Part::kUp},
      {".lora_A.weight", Part::kDown},
      {".lora_B.weight", Part::kUp},
      {".alpha", Part::kAlpha},
      {".diff_b", Part::kDiffBias},
      {".diff", Part::kDiff},
      {".dora_scale", Part::kDora},
  };
  for (const auto& [suffix, part] : kSuffixes)
    if (ends_with(key, suffix)) return {key.substr(0, key.size() - std::string(suffix).size()), part};
  // PEFT's DoRA: <module>.lora_magnitude_vector (or .lora_magnitude_vector.default.weight).
  if (const std::size_t at = key.find(".lora_magnitude_vector"); at != std::string::npos)
    return {key.substr(0, at), Part::kDora};
  // LyCORIS's other adapters (LoHa's Hadamard pairs, LoKr's Kronecker factors, GLoRA, OFT): another formula.
  for (const char* token : {".hada_", ".lokr_", ".a1.weight", ".oft_", ".glora_"})
    if (key.find(token) != std::string::npos) return {key, Part::kOtherAdapter};
  return {key, Part::kUnknown};
}

// diffusers' module names (scripts/convert_wan_to_diffusers.py, TRANSFORMER_KEYS_RENAME_DICT) back to
// the official ones; longest first so that a prefix does not shadow a longer name.
const std::vector<std::pair<std::string, std::string>>& diffusers_renames() {
  static const std::vector<std::pair<std::string, std::string>> kRenames = {
      {"condition_embedder.image_embedder.ff.net.0.proj", "img_emb.proj.1"},
      {"condition_embedder.image_embedder.ff.net.2", "img_emb.proj.3"},
      {"condition_embedder.image_embedder.norm1", "img_emb.proj.0"},
      {"condition_embedder.image_embedder.norm2", "img_emb.proj.4"},
      {"condition_embedder.image_embedder.pos_embed", "img_emb.emb_pos"},
      {"condition_embedder.time_embedder.linear_1", "time_embedding.0"},
      {"condition_embedder.time_embedder.linear_2", "time_embedding.2"},
      {"condition_embedder.text_embedder.linear_1", "text_embedding.0"},
      {"condition_embedder.text_embedder.linear_2", "text_embedding.2"},
      {"condition_embedder.time_proj", "time_projection.1"},
      {"attn2.norm_added_k", "cross_attn.norm_k_img"},
      {"attn2.add_k_proj", "cross_attn.k_img"},
      {"attn2.add_v_proj", "cross_attn.v_img"},
      {"attn1.to_out.0", "self_attn.o"},
      {"attn2.to_out.0", "cross_attn.o"},
      {"ffn.net.0.proj", "ffn.0"},
      {"ffn.net.2", "ffn.2"},
      {"attn1.to_q", "self_attn.q"},
      {"attn1.to_k", "self_attn.k"},
      {"attn1.to_v", "self_attn.v"},
      {"attn1.norm_q", "self_attn.norm_q"},
      {"attn1.norm_k", "self_attn.norm_k"},
      {"attn2.to_q", "cross_attn.q"},
      {"attn2.to_k", "cross_attn.k"},
      {"attn2.to_v", "cross_attn.v"},
      {"attn2.norm_q", "cross_attn.norm_q"},
      {"attn2.norm_k", "cross_attn.norm_k"},
      {"proj_out", "head.head"},
  };
  return kRenames;
}

bool is_diffusers_module(const std::string& m) {
  for (const char* token : {"attn1.", "attn2.", "ffn.net.", "condition_embedder.", "proj_out"})
    if (m.find(token) != std::string::npos) return true;
  return false;
}

}  // namespace

std::string lora_module_to_official(const std::string& module,
                                    const std::unordered_map<std::string, std::string>& flat_modules) {
  std::string m = module;
  for (const char* prefix : {"base_model.model.", "model.diffusion_model.", "diffusion_model.", "transformer."})
    if (starts_with(m, prefix)) {
      m = m.substr(std::string(prefix).size());
      break;
    }
  if (starts_with(m, "lora_unet_")) {  // kohya: dots flattened to underscores
    const auto it = flat_modules.find(m.substr(10));
    return it == flat_modules.end() ? std::string() : it->second;
  }
  if (!is_diffusers_module(m)) return m;  // official (block norms of diffusers files: see the constructor)
  for (const auto& [from, to] : diffusers_renames()) {
    const std::size_t at = m.find(from);
    if (at != std::string::npos) {
      m.replace(at, from.size(), to);
      break;
    }
  }
  return m;
}

LoraMergedSource::LoraMergedSource(TensorSourcePtr base, const std::vector<LoraFile>& loras, bool allow_partial)
    : base_(std::move(base)) {
  std::unordered_map<std::string, std::string> flat;
  for (const std::string& name : base_->names())
    for (const char* suffix : {".weight", ".bias"})
      if (ends_with(name, suffix)) {
        std::string module = name.substr(0, name.size() - std::string(suffix).size());
        std::string f = module;
        for (char& c : f)
          if (c == '.') c = '_';
        flat.emplace(f, module);
      }
  for (const LoraFile& lora : loras) {
    const TensorSourcePtr file = open_weights(lora.path);
    files_.push_back(file);
    LoraReport report;
    report.path = lora.path;
    const auto bad = [&](ErrorCode code, const std::string& what) {
      return Error(code, "LoRA " + lora.path + ": " + what);
    };
    // Diffusers files rename norm2 / norm3 the other way round: one file is one layout.
    bool diffusers = false;
    for (const std::string& key : file->names()) diffusers = diffusers || is_diffusers_module(split_key(key).first);
    struct Pair {
      std::string up, down, alpha, diff, diff_b;
      std::string diff_target;  // the weight a diff patches (<module>.weight, or a bare parameter)
      std::vector<std::string> keys;
    };
    std::map<std::string, Pair> modules;  // official module -> its entries
    for (const std::string& key : file->names()) {
      const auto [module, part] = split_key(key);
      if (part == Part::kDora)
        throw bad(ErrorCode::kUnsupported,
                  "'" + key + "' is a DoRA magnitude: DoRA LoRAs are not supported (use a plain LoRA)");
      if (part == Part::kOtherAdapter)
        throw bad(ErrorCode::kUnsupported, "'" + key +
                                               "' belongs to a LoHa, LoKr or other LyCORIS adapter: only LoRA "
                                               "(low-rank up/down pairs) and full diffs are supported");
      std::string official = part == Part::kUnknown ? std::string() : lora_module_to_official(module, flat);
      if (diffusers && !official.empty()) {  // diffusers' norm2 is the official norm3 and back
        for (const auto& [from, to] : {std::pair<const char*, const char*>{".norm2", ".norm3"}, {".norm3", ".norm2"}})
          if (ends_with(official, from) && official.find("img_emb") == std::string::npos) {
            official = official.substr(0, official.size() - 6) + to;
            break;
          }
      }
      std::string target = official + (part == Part::kDiffBias ? ".bias" : ".weight");
      // A full diff of a parameter that is no module's weight (blocks.N.modulation, head.modulation):
      // ComfyUI keys those by the parameter's own name.
      if (part == Part::kDiff && !official.empty() && !base_->contains(target) && base_->contains(official))
        target = official;
      if (official.empty() || !base_->contains(target)) {
        ++report.unmatched;
        if (report.unmatched_examples.size() < 3) report.unmatched_examples.push_back(key);
        continue;
      }
      ++report.matched;
      Pair& p = modules[official];
      p.keys.push_back(key);
      if (part == Part::kDiff) p.diff_target = target;
      (part == Part::kUp      ? p.up
       : part == Part::kDown  ? p.down
       : part == Part::kAlpha ? p.alpha
       : part == Part::kDiff  ? p.diff
                              : p.diff_b) = key;
    }
    if (report.matched == 0 && report.unmatched == 0)
      throw bad(ErrorCode::kCorruptFile, "it holds no entries: an empty LoRA file");
    if (report.matched == 0)
      throw bad(ErrorCode::kModelMismatch, "none of its " + std::to_string(report.unmatched) +
                                               (report.unmatched == 1 ? " entry matches" : " entries matches") +
                                               " a weight of this DiT (e.g. " + report.unmatched_examples[0] +
                                               "): is it a LoRA for this model?");
    if (report.unmatched > 0 && !allow_partial) {
      std::string examples;
      for (const std::string& e : report.unmatched_examples) examples += (examples.empty() ? "" : ", ") + e;
      throw bad(ErrorCode::kModelMismatch, std::to_string(report.matched) +
                                               (report.matched == 1 ? " entry matches" : " entries match") +
                                               " DiT weights, " + std::to_string(report.unmatched) +
                                               (report.unmatched == 1 ? " does not (" : " do not (") + examples +
                                               "): a LoRA for another model? --lora-allow-partial applies the "
                                               "matching ones");
    }
    for (const auto& [module, p] : modules) {
      const std::string weight = module + ".weight";
      if (!p.up.empty() || !p.down.empty()) {
        if (!base_->contains(weight))
          throw bad(ErrorCode::kModelMismatch, module + " has a low-rank pair but the DiT has no " + weight);
        const std::vector<std::int64_t>& w = base_->info(weight).shape;
        std::int64_t w_numel = 1;
        for (std::int64_t d : w) w_numel *= d;
        if (p.up.empty() || p.down.empty())
          throw bad(ErrorCode::kCorruptFile, module + " has " + (p.up.empty() ? "a down" : "an up") +
                                                 " matrix without its " + (p.up.empty() ? "up" : "down") + " half");
        const std::vector<std::int64_t>& up = file->info(p.up).shape;
        const std::vector<std::int64_t>& down = file->info(p.down).shape;
        if (up.size() < 2 || down.size() < 2 || up[1] != down[0])
          throw bad(ErrorCode::kCorruptFile,
                    module + ": up " + shape_text(up) + " and down " + shape_text(down) + " are not a low-rank pair");
        // The change B A: [out] + down's trailing dims (a conv's kernel), times up's trailing (1x1) dims.
        std::vector<std::int64_t> change{up[0]};
        for (std::size_t d = 1; d < down.size(); ++d) change.push_back(down[d]);
        std::int64_t delta = up[0];
        for (std::size_t d = 1; d < down.size(); ++d) delta *= down[d];
        for (std::size_t d = 2; d < up.size(); ++d) delta *= up[d];
        if (up[0] != w[0] || delta != w_numel)
          throw bad(ErrorCode::kModelMismatch, module + " makes a change of " + shape_text(change) +
                                                   " for the DiT weight " + shape_text(w) +
                                                   ": a LoRA for another model size");
        if (down[0] <= 0) throw bad(ErrorCode::kCorruptFile, module + " has rank 0 (an empty up/down pair)");
        double alpha = static_cast<double>(down[0]);  // no alpha: scale 1 (PEFT's lora_alpha = r)
        if (!p.alpha.empty()) {
          const torch::Tensor a = file->view(p.alpha);
          if (a.numel() != 1) throw bad(ErrorCode::kCorruptFile, p.alpha + " is not a single number");
          alpha = a.to(torch::kFloat64).item<double>();
          if (!std::isfinite(alpha)) throw bad(ErrorCode::kCorruptFile, p.alpha + " is not a finite number");
          if (alpha == 0)
            throw bad(ErrorCode::kCorruptFile,
                      p.alpha + " is 0, which makes the pair change nothing: the file is damaged");
        }
        patches_[weight].push_back(Patch{file, p.up, p.down, "", lora.strength * alpha / static_cast<double>(down[0])});
      }
      for (const auto& [entry, target] :
           {std::pair<const std::string&, std::string>{p.diff, p.diff_target}, {p.diff_b, module + ".bias"}}) {
        if (entry.empty()) continue;
        if (file->info(entry).shape != base_->info(target).shape)
          throw bad(ErrorCode::kModelMismatch, entry + " is " + shape_text(file->info(entry).shape) +
                                                   " for the DiT's " + shape_text(base_->info(target).shape) +
                                                   ": a LoRA for another model size");
        patches_[target].push_back(Patch{file, "", "", entry, lora.strength});
      }
    }
    reports_.push_back(report);
  }
}

namespace {
// Rows [r0, r0 + rows) of `w` (float32, [rows, row]) plus each patch's change to them, in float32.
// A LoRA entry as float32, refused when it holds NaN or infinity (merged, it would turn the video to NaN).
torch::Tensor finite_entry(const LoraMergedSource::Patch& p, const std::string& entry) {
  torch::Tensor t = p.file->view(entry).to(torch::kFloat32);
  if (!torch::isfinite(t).all().item<bool>())
    throw Error(ErrorCode::kCorruptFile,
                "LoRA " + p.file->path() + ": '" + entry + "' holds NaN or infinite values; the file is damaged");
  return t;
}

torch::Tensor add_patches(torch::Tensor w, const std::vector<LoraMergedSource::Patch>& patches, std::int64_t r0) {
  const std::int64_t rows = w.size(0);
  for (const LoraMergedSource::Patch& p : patches) {
    if (!p.diff.empty()) {
      w.add_(finite_entry(p, p.diff).reshape({-1, w.size(1)}).narrow(0, r0, rows), p.scale);
      continue;
    }
    const torch::Tensor up = finite_entry(p, p.up).flatten(1).narrow(0, r0, rows);
    const torch::Tensor down = finite_entry(p, p.down).flatten(1);
    w.add_(torch::mm(up, down), p.scale);
  }
  return w;
}
}  // namespace

torch::Tensor LoraMergedSource::view(const std::string& name) const {
  const auto it = patches_.find(name);
  if (it == patches_.end()) return base_->view(name);
  torch::NoGradGuard no_grad;
  // A copy in float32 (never the file's pages), then each change added in float32.
  const torch::Tensor base = base_->view(name);
  const std::int64_t rows = base.dim() == 0 ? 1 : base.size(0);
  torch::Tensor w = base.to(torch::kFloat32, /*non_blocking=*/false, /*copy=*/true).reshape({rows, -1});
  return add_patches(std::move(w), it->second, 0).reshape(base.sizes());
}

torch::Tensor LoraMergedSource::flat_range(const std::string& name, std::int64_t offset, std::int64_t count) const {
  const auto it = patches_.find(name);
  if (it == patches_.end()) return base_->flat_range(name, offset, count);
  torch::NoGradGuard no_grad;
  const std::vector<std::int64_t>& shape = base_->info(name).shape;
  std::int64_t numel = 1;
  for (std::int64_t d : shape) numel *= d;
  const std::int64_t rows = shape.empty() ? 1 : shape[0];
  const std::int64_t row = rows > 0 ? numel / rows : 0;
  if (count <= 0 || row == 0) return base_->flat_range(name, offset, count).to(torch::kFloat32);
  const std::int64_t r0 = offset / row, r1 = (offset + count + row - 1) / row;
  torch::Tensor w = base_->flat_range(name, r0 * row, (r1 - r0) * row)
                        .to(torch::kFloat32, /*non_blocking=*/false, /*copy=*/true)
                        .reshape({r1 - r0, row});
  return add_patches(std::move(w), it->second, r0).reshape({-1}).narrow(0, offset - r0 * row, count);
}

void LoraMergedSource::release_resident_pages() const {
  base_->release_resident_pages();
  for (const auto& f : files_) f->release_resident_pages();
}

}  // namespace wan
