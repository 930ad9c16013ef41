#include "pipeline/model_folder.h"

#include <algorithm>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <vector>

#include "wan/error.h"
#include "weights/file_util.h"
#include "weights/loader.h"

namespace wan {
namespace fs = std::filesystem;
namespace {

const char* kOfficialT5 = "models_t5_umt5-xxl-enc-bf16.pth";
const char* kOfficialVae = "Wan2.1_VAE.pth";
const char* kOfficialVae22 = "Wan2.2_VAE.pth";  // Wan2.2-TI2V-5B's folder
const char* kOfficialClip = "models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth";

bool is_weight_file(const fs::path& p) {
  const std::string ext = p.extension().string();
  return ext == ".safetensors" || ext == ".gguf" || ext == ".pth" || ext == ".pt" || ext == ".ckpt" || ext == ".bin";
}

// Which model a file holds, from its tensor names (headers only; nothing is loaded).
enum class Role { kDit, kT5, kVae, kClip, kOther };

Role sniff_role(const std::string& path) {
  const TensorSourcePtr src = open_weights(path);
  auto has = [&](const char* name) { return src->contains(name); };
  if (has("head.modulation") || has("model.diffusion_model.head.modulation")) return Role::kDit;
  if (has("decoder.middle.0.residual.0.gamma")) return Role::kVae;
  if (has("token_embedding.weight") && has("blocks.0.ffn.gate.0.weight")) return Role::kT5;
  if (has("shared.weight") && has("encoder.block.0.layer.1.DenseReluDense.wi_0.weight")) return Role::kT5;
  if (has("visual.patch_embedding.weight") || has("vision_model.embeddings.patch_embedding.weight")) return Role::kClip;
  return Role::kOther;
}

const char* role_name(Role role) {
  switch (role) {
    case Role::kDit:
      return "Wan diffusion model";
    case Role::kT5:
      return "umT5 text encoder";
    case Role::kVae:
      return "Wan VAE";
    case Role::kClip:
      return "CLIP vision";
    default:
      return "other";
  }
}

// Wan files of `role` under dir (two levels deep, as ComfyUI allows subfolders), sorted.
std::vector<std::string> find_by_role(const fs::path& dir, Role role, std::string* unreadable) {
  std::vector<std::string> found;
  if (!fs::is_directory(dir)) return found;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied);
       it != fs::recursive_directory_iterator(); ++it) {
    if (it.depth() > 1) it.disable_recursion_pending();
    if (!it->is_regular_file() || !is_weight_file(it->path())) continue;
    try {
      if (sniff_role(it->path().string()) == role) found.push_back(it->path().string());
    } catch (const Error& e) {
      if (unreadable->empty()) *unreadable = e.what();
    }
  }
  std::sort(found.begin(), found.end());
  return found;
}

// A user-given file: as is, or relative to the role's ComfyUI subfolder.
std::string explicit_file(const std::string& given, const fs::path& model_dir, const char* subdir, const char* flag) {
  if (fs::exists(given)) return given;
  if (!model_dir.empty() && fs::exists(model_dir / subdir / given)) return (model_dir / subdir / given).string();
  throw Error(ErrorCode::kFileNotFound,
              std::string(flag) + " " + given + ": no such file" +
                  (model_dir.empty() ? "" : " (also looked in " + (model_dir / subdir).string() + ")"));
}

std::string pick_one(const fs::path& model_dir, const char* subdir, Role role, const char* flag) {
  std::string unreadable;
  const std::vector<std::string> found = find_by_role(model_dir / subdir, role, &unreadable);
  if (found.size() == 1) return found[0];
  if (found.empty()) {
    std::string msg = (model_dir / subdir).string() + ": no " + role_name(role) + " file found";
    if (!unreadable.empty()) msg += " (one file could not be read: " + unreadable + ")";
    if (role == Role::kT5 && fs::is_directory(model_dir / subdir))
      for (const auto& e : fs::directory_iterator(model_dir / subdir))
        if (e.path().extension() == ".gguf") {
          msg += " (GGUF text encoders such as " + e.path().filename().string() +
                 " are not read: use a .safetensors or .pth umT5)";
          break;
        }
    throw Error(ErrorCode::kFileNotFound, msg + "; put one there or name it with " + flag);
  }
  std::string names;
  for (const std::string& f : found) names += (names.empty() ? "" : ", ") + fs::path(f).filename().string();
  throw Error(ErrorCode::kInvalidArgument,
              (model_dir / subdir).string() + " holds several " + role_name(role) + " files (" + names +
                  "): choose one with " + flag +
                  (role == Role::kDit ? " (Wan2.2 A14B: --dit LOW_NOISE_FILE --dit-high HIGH_NOISE_FILE)" : ""));
}

// ComfyUI's Wan2.2 A14B files differ only in "high_noise" / "low_noise" (wan2.2_t2v_high_noise_14B_fp8_scaled
// and wan2.2_t2v_low_noise_14B_fp8_scaled): the other expert's file beside `path`, or "" when there is none.
std::string expert_twin(const std::string& path, const std::string& from, const std::string& to) {
  const fs::path p(path);
  std::string name = p.filename().string();
  const std::size_t at = name.rfind(from);
  if (at == std::string::npos) return {};
  name.replace(at, from.size(), to);
  const fs::path twin = p.parent_path() / name;
  std::error_code ec;
  return fs::is_regular_file(twin, ec) ? twin.string() : std::string();
}

// An official Wan2.2-TI2V-5B folder: its config.json says model_type "ti2v" (it takes the Wan2.2 VAE
// even when a Wan2.1_VAE.pth lies beside it).
bool ti2v_folder(const fs::path& dir) {
  try {
    if (!fs::is_regular_file(dir / "config.json")) return false;
    const nlohmann::json j = nlohmann::json::parse(read_text_file((dir / "config.json").string()));
    return j.is_object() && j.value("model_type", std::string()) == "ti2v";
  } catch (const std::exception&) {
    return false;  // a broken config.json is named where it is read
  }
}

std::string tokenizer_in(const fs::path& p) {
  if (fs::is_regular_file(p)) return p.string();
  if (fs::is_regular_file(p / "spiece.model")) return (p / "spiece.model").string();
  if (fs::is_regular_file(p / "google" / "umt5-xxl" / "spiece.model"))
    return (p / "google" / "umt5-xxl" / "spiece.model").string();
  return {};
}

std::string official_dit(const fs::path& dir) {
  for (const char* name : {"diffusion_pytorch_model.safetensors.index.json", "diffusion_pytorch_model.safetensors"})
    if (fs::exists(dir / name)) return (dir / name).string();
  throw Error(ErrorCode::kFileNotFound, dir.string() +
                                            ": official Wan folder without diffusion_pytorch_model.safetensors "
                                            "(or its .index.json); the download is incomplete");
}

std::string required(const fs::path& p, const std::string& what) {
  if (!fs::exists(p))
    throw Error(ErrorCode::kFileNotFound, p.string() + ": missing (" + what + "); the download is incomplete");
  return p.string();
}

}  // namespace

ResolvedModel resolve_model_files(const ModelFiles& files) {
  ResolvedModel out;
  const fs::path dir = files.model_dir;
  if (!dir.empty() && !fs::is_directory(dir))
    throw Error(ErrorCode::kFileNotFound, "--model " + files.model_dir + ": no such folder");
  // Wan2.2 A14B: two experts in sub-folders, no config.json at the top (the official release's layout).
  const bool experts =
      !dir.empty() && (fs::is_directory(dir / "high_noise_model") || fs::is_directory(dir / "low_noise_model"));
  const bool official = !dir.empty() && (experts || fs::exists(dir / "config.json") || fs::exists(dir / kOfficialVae) ||
                                         fs::exists(dir / kOfficialVae22) ||
                                         fs::exists(dir / "diffusion_pytorch_model.safetensors.index.json") ||
                                         fs::exists(dir / "diffusion_pytorch_model.safetensors"));
  const bool comfy = !dir.empty() && !official &&
                     (fs::is_directory(dir / "diffusion_models") || fs::is_directory(dir / "text_encoders"));
  if (!dir.empty() && !official && !comfy)
    throw Error(ErrorCode::kFileNotFound,
                files.model_dir +
                    ": neither an official Wan2.1 folder (config.json, "
                    "diffusion_pytorch_model.safetensors, " +
                    kOfficialT5 + ", " + kOfficialVae +
                    ") nor a ComfyUI models folder (diffusion_models/, text_encoders/, vae/)");
  out.layout = official ? "official" : comfy ? "comfyui" : "files";

  if (!files.dit.empty())
    out.dit = explicit_file(files.dit, dir, "diffusion_models", "--dit");
  else if (official && !experts)
    out.dit = official_dit(dir);
  else if (comfy) {
    // Two DiTs that are the two halves of one A14B (by their names) are a model, not a choice to make.
    std::string unreadable;  // pick_one names it when it matters
    const std::vector<std::string> dits = find_by_role(dir / "diffusion_models", Role::kDit, &unreadable);
    const auto twin_of = [&](const std::string& f) { return expert_twin(f, "low_noise", "high_noise"); };
    if (dits.size() == 2 && (twin_of(dits[0]) == dits[1] || twin_of(dits[1]) == dits[0]))
      out.dit = twin_of(dits[0]) == dits[1] ? dits[0] : dits[1];
    else
      out.dit = pick_one(dir, "diffusion_models", Role::kDit, "--dit");
  }
  if (official && files.dit.empty() && fs::exists(dir / "config.json")) out.dit_config = (dir / "config.json").string();
  if (experts && files.dit.empty()) {
    for (const char* sub : {"high_noise_model", "low_noise_model"})
      if (!fs::is_directory(dir / sub))
        throw Error(ErrorCode::kFileNotFound, files.model_dir +
                                                  ": a Wan2.2 A14B folder needs high_noise_model/ and "
                                                  "low_noise_model/, and " +
                                                  sub + "/ is missing (the download is incomplete)");
    out.dit = official_dit(dir / "low_noise_model");
    out.dit_high = official_dit(dir / "high_noise_model");
    if (fs::exists(dir / "low_noise_model" / "config.json"))
      out.dit_config = (dir / "low_noise_model" / "config.json").string();
    if (fs::exists(dir / "high_noise_model" / "config.json"))
      out.dit_high_config = (dir / "high_noise_model" / "config.json").string();
  }
  if (experts && !files.dit.empty() && files.dit_high.empty())
    throw Error(ErrorCode::kInvalidArgument,
                "--dit " + files.dit + " in the Wan2.2 A14B folder " + files.model_dir +
                    ": one expert alone is not the model; give the other with --dit-high (or leave --dit out to use "
                    "high_noise_model/ and low_noise_model/)");
  if (files.dit_high.empty() && !experts && !out.dit.empty()) {
    // A ComfyUI A14B half named alone (or found in the folder): its twin beside it is the other expert.
    if (const std::string high = expert_twin(out.dit, "low_noise", "high_noise"); !high.empty()) {
      out.dit_high = high;
    } else if (const std::string low = expert_twin(out.dit, "high_noise", "low_noise"); !low.empty()) {
      out.dit_high = out.dit;
      out.dit = low;
    }
    if (!out.dit_high.empty()) {
      out.dit_config.clear();
      out.paired_experts = "Wan2.2 A14B from two files found by their names: high-noise expert " +
                           fs::path(out.dit_high).filename().string() + ", low-noise expert " +
                           fs::path(out.dit).filename().string() + " (--dit and --dit-high name them yourself)";
    }
  }
  if (!files.dit_high.empty()) {
    if (files.dit.empty())
      throw Error(ErrorCode::kInvalidArgument,
                  "--dit-high names the high-noise expert of Wan2.2 A14B: give the low-noise one with --dit too");
    out.dit_high = explicit_file(files.dit_high, dir, "diffusion_models", "--dit-high");
    out.dit_high_config.clear();
  }

  if (!files.t5.empty())
    out.t5 = explicit_file(files.t5, dir, "text_encoders", "--t5");
  else if (official)
    out.t5 = required(dir / kOfficialT5, "the umT5 text encoder");
  else if (comfy)
    out.t5 = pick_one(dir, "text_encoders", Role::kT5, "--t5");

  if (!files.vae.empty())
    out.vae = explicit_file(files.vae, dir, "vae", "--vae");
  else if (official && ti2v_folder(dir))
    out.vae = required(dir / kOfficialVae22, "the Wan2.2 VAE of TI2V-5B");
  else if (official && !fs::exists(dir / kOfficialVae) && fs::exists(dir / kOfficialVae22))
    out.vae = (dir / kOfficialVae22).string();
  else if (official)
    out.vae = required(dir / kOfficialVae, "the VAE");
  else if (comfy)
    out.vae = pick_one(dir, "vae", Role::kVae, "--vae");

  if (!files.tokenizer.empty()) {
    if (fs::exists(files.tokenizer) && !fs::is_regular_file(files.tokenizer) && !fs::is_directory(files.tokenizer))
      throw Error(ErrorCode::kInvalidArgument,
                  "--tokenizer " + files.tokenizer + " is not a regular file (a pipe or device)");
    out.tokenizer = tokenizer_in(files.tokenizer);
    if (out.tokenizer.empty())
      throw Error(ErrorCode::kFileNotFound, "--tokenizer " + files.tokenizer + ": no spiece.model there");
  } else if (official) {
    out.tokenizer = required(dir / "google" / "umt5-xxl" / "spiece.model", "the umT5 tokenizer");
  } else if (comfy) {
    out.tokenizer = tokenizer_in(dir / "text_encoders");  // optional: ComfyUI files may embed it
  }

  const char* missing = out.dit.empty() ? "--dit" : out.t5.empty() ? "--t5" : out.vae.empty() ? "--vae" : nullptr;
  if (missing)
    throw Error(ErrorCode::kInvalidArgument, std::string("no model given: pass --model DIR, or ") + missing + " FILE");
  return out;
}

std::string resolve_clip_file(const ModelFiles& files, const ResolvedModel& resolved) {
  const fs::path dir = files.model_dir;
  if (!files.clip.empty()) return explicit_file(files.clip, dir, "clip_vision", "--clip");
  if (resolved.layout == "official")
    return required(dir / kOfficialClip, "the CLIP vision encoder image-to-video needs");
  if (resolved.layout == "comfyui") return pick_one(dir, "clip_vision", Role::kClip, "--clip");
  throw Error(ErrorCode::kInvalidArgument,
              "image-to-video needs the CLIP vision encoder: pass --clip FILE "
              "(models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth or clip_vision_h.safetensors)");
}

std::string resolve_lora_file(const std::string& given, const std::string& model_dir) {
  return explicit_file(given, model_dir, "loras", "--lora");
}

}  // namespace wan
