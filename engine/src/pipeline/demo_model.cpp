#include "pipeline/demo_model.h"

#include <torch/torch.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "model/clip.h"
#include "model/dit.h"
#include "model/t5.h"
#include "model/tokenizer.h"
#include "model/vae.h"
#include "model/vae22.h"
#include "wan/error.h"
#include "wan/generation.h"
#include "weights/file_util.h"
#include "weights/pth_file.h"
#include "weights/safetensors.h"

namespace wan {
namespace fs = std::filesystem;
namespace {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Fills every parameter so activations keep unit scale: norms' gains 1, biases 0, modulation
// ~ N(0, 1/dim), matrices and kernels ~ N(0, 1/fan_in), embeddings ~ N(0, 1).
NamedTensors random_state(torch::nn::Module& module, torch::ScalarType stored, const torch::Generator& gen) {
  NamedTensors out;
  torch::NoGradGuard no_grad;
  for (const auto& item : module.named_parameters(true)) {
    const std::string& name = item.key();
    torch::Tensor p = item.value();
    const bool is_norm = name.find("norm") != std::string::npos || ends_with(name, ".gamma");
    if (is_norm && !ends_with(name, ".bias")) {
      p.fill_(1.0);
    } else if (ends_with(name, ".bias")) {
      p.zero_();
    } else if (ends_with(name, "modulation")) {
      p.copy_(torch::randn(p.sizes(), gen, torch::kFloat32) / std::sqrt(static_cast<double>(p.size(-1))));
    } else if (name.find("embedding.weight") != std::string::npos && p.dim() == 2 &&
               name.find("token") != std::string::npos) {
      p.copy_(torch::randn(p.sizes(), gen, torch::kFloat32));
    } else {
      const double fan_in = p.dim() > 1 ? static_cast<double>(p.numel() / p.size(0)) : static_cast<double>(p.numel());
      p.copy_(torch::randn(p.sizes(), gen, torch::kFloat32) / std::sqrt(fan_in));
    }
    out.emplace_back(name, p.is_floating_point() ? p.to(stored) : p);
  }
  for (const auto& item : module.named_buffers(true)) out.emplace_back(item.key(), item.value());
  return out;
}

std::string training_text() {
  // A few thousand short scene descriptions from word lists: enough for a small unigram vocabulary.
  const char* subjects[] = {"a red fox",         "an old man",     "a small boat",     "two cats",
                            "a young woman",     "a white horse",  "the city lights",  "a golden retriever",
                            "a paper kite",      "a steam train",  "a flock of birds", "a blue car",
                            "a tall lighthouse", "children",       "a dancer",         "rain drops",
                            "an astronaut",      "a sailing ship", "a waterfall",      "a hot air balloon"};
  const char* verbs[] = {"runs through", "walks across", "floats over", "rests beside",         "drives along",
                         "flies above",  "glows in",     "jumps into",  "moves slowly through", "spins around",
                         "appears in",   "crosses",      "waits near",  "shines over"};
  const char* places[] = {"the snowy forest", "a quiet street",    "the calm sea",      "a busy market",
                          "the green hills",  "an empty beach",    "a neon city",       "the desert at noon",
                          "a misty lake",     "the mountain pass", "a sunflower field", "the old harbor",
                          "a rainy alley",    "the night sky"};
  const char* times[] = {"at dawn",           "at sunset",          "in the rain", "under the stars",
                         "in slow motion",    "on a windy day",     "in winter",   "in autumn light",
                         "with soft shadows", "in cinematic style", "close up",    "from above"};
  std::string text;
  std::size_t i = 0;
  for (const char* s : subjects)
    for (const char* v : verbs)
      for (const char* p : places) {
        text += std::string(s) + " " + v + " " + p + " " + times[i++ % (sizeof(times) / sizeof(times[0]))] + ".\n";
      }
  return text;
}

// The CLIP tower as the official .pth holds it: visual.* with every block (the last one unused),
// post_norm and head, beside a textual part and log_scale, which the engine ignores.
void write_demo_clip(const fs::path& path, const DemoModelSpec& spec, const torch::Generator& gen) {
  const ModelPlacement fp32 = ModelPlacement::make(torch::kFloat32, torch::kCPU);
  ClipVisionConfig c;
  c.dim = spec.clip_dim;
  c.mlp_dim = 4 * spec.clip_dim;
  c.num_heads = clip_default_heads(spec.clip_dim);
  c.num_layers = spec.clip_layers;
  c.image_size = spec.clip_image_size;
  c.patch_size = spec.clip_patch;
  ClipVision used(c, fp32);
  NamedTensors state;
  for (auto& [name, t] : random_state(*used, torch::kFloat32, gen)) state.emplace_back("visual." + name, t);
  ClipBlock last(c, fp32);
  for (auto& [name, t] : random_state(*last, torch::kFloat32, gen))
    state.emplace_back("visual.transformer." + std::to_string(c.num_layers - 1) + "." + name, t);
  state.emplace_back("visual.post_norm.weight", torch::ones({c.dim}));
  state.emplace_back("visual.post_norm.bias", torch::zeros({c.dim}));
  state.emplace_back("visual.head",
                     torch::randn({c.dim, c.dim}, gen, torch::kFloat32) / std::sqrt(static_cast<double>(c.dim)));
  state.emplace_back("textual.token_embedding.weight", torch::randn({16, c.dim}, gen, torch::kFloat32));
  state.emplace_back("log_scale", torch::tensor(4.6052f));
  write_pth(path.string(), state);
}

void write_json(const fs::path& path, const nlohmann::json& j) {
  const std::string text = j.dump(2) + "\n";
  AtomicFileWriter w(path.string());
  w.write(text.data(), text.size());
  w.commit();
}

}  // namespace

void make_demo_model(const std::string& dir, const DemoModelSpec& spec) {
  const fs::path target(dir);
  if (fs::exists(target) && !(fs::is_directory(target) && fs::is_empty(target)))
    throw Error(ErrorCode::kInvalidArgument, dir + ": already exists and is not empty; choose a new folder");
  const fs::path temp = dir + ".part-" + std::to_string(getpid());
  std::error_code ec;
  fs::remove_all(temp, ec);
  fs::create_directories(temp / "google" / "umt5-xxl", ec);
  if (ec) throw Error(ErrorCode::kIo, "cannot create " + temp.string() + ": " + ec.message());
  try {
    torch::NoGradGuard no_grad;
    const torch::Generator gen = at::detail::createCPUGenerator(spec.seed);
    const ModelPlacement fp32 = ModelPlacement::make(torch::kFloat32, torch::kCPU);

    // Tokenizer first: its vocabulary size sizes the T5 embedding.
    const fs::path corpus = temp / "corpus.txt";
    {
      std::ofstream out(corpus);
      out << training_text();
      if (!out) throw Error(ErrorCode::kIo, "cannot write " + corpus.string());
    }
    const fs::path prefix = temp / "google" / "umt5-xxl" / "spiece";
    train_sentencepiece({{"input", corpus.string()},
                         {"model_prefix", prefix.string()},
                         {"vocab_size", std::to_string(spec.vocab)},
                         {"model_type", "unigram"},
                         {"character_coverage", "1.0"},
                         {"pad_id", "0"},
                         {"eos_id", "1"},
                         {"unk_id", "2"},
                         {"bos_id", "-1"},
                         {"hard_vocab_limit", "false"},
                         {"num_threads", "2"}});
    fs::remove(corpus);
    fs::remove(prefix.string() + ".vocab");

    DitConfig dit;
    dit.dim = spec.dit_dim;
    dit.num_heads = spec.dit_dim / 128;
    dit.num_layers = spec.dit_layers;
    dit.ffn_dim = spec.dit_ffn;
    dit.text_dim = spec.t5_dim;
    if (spec.i2v) {
      dit.kind = DitKind::kI2V;
      dit.in_dim = 2 * dit.out_dim + 4;
      dit.clip_dim = spec.clip_dim;
      dit.clip_input = !spec.moe;  // Wan2.2's image-to-video DiT has no image embedding
    }
    if (spec.ti2v) {
      if (spec.i2v || spec.moe)
        throw Error(ErrorCode::kInvalidArgument, "a TI2V demo model is neither --i2v nor --moe (it does both tasks)");
      dit.kind = DitKind::kTI2V;
      dit.in_dim = dit.out_dim = 48;
    }
    dit.validate("demo model", ErrorCode::kInvalidArgument);
    const auto write_dit = [&](const fs::path& folder) {
      fs::create_directories(folder);
      WanModel model(dit, fp32);
      write_safetensors((folder / "diffusion_pytorch_model.safetensors").string(),
                        random_state(*model, torch::kFloat32, gen), {{"format", "pt"}});
      write_json(folder / "config.json", {{"_class_name", "WanModel"},
                                          {"_diffusers_version", "0.30.0"},
                                          {"model_type", spec.ti2v  ? "ti2v"
                                                         : spec.i2v ? "i2v"
                                                                    : "t2v"},
                                          {"patch_size", {1, 2, 2}},
                                          {"text_len", dit.text_len},
                                          {"in_dim", dit.in_dim},
                                          {"dim", dit.dim},
                                          {"ffn_dim", dit.ffn_dim},
                                          {"freq_dim", dit.freq_dim},
                                          {"text_dim", dit.text_dim},
                                          {"out_dim", dit.out_dim},
                                          {"num_heads", dit.num_heads},
                                          {"num_layers", dit.num_layers},
                                          {"window_size", {-1, -1}},
                                          {"qk_norm", true},
                                          {"cross_attn_norm", true},
                                          {"eps", 1e-6}});
    };
    if (spec.moe) {
      write_dit(temp / "high_noise_model");
      write_dit(temp / "low_noise_model");
    } else {
      write_dit(temp);
    }

    T5Config t5;
    t5.vocab = spec.vocab;
    t5.dim = t5.dim_attn = spec.t5_dim;
    t5.dim_ffn = spec.t5_ffn;
    t5.num_heads = spec.t5_heads;
    t5.num_layers = spec.t5_layers;
    T5Encoder encoder(t5, fp32);
    write_pth((temp / "models_t5_umt5-xxl-enc-bf16.pth").string(), random_state(*encoder, torch::kBFloat16, gen));

    if (spec.ti2v) {
      Vae22Config vae;
      vae.dim = spec.vae_dim;
      vae.dec_dim = spec.vae_dim * 3 / 2;  // the decoder wider than the encoder, as 256 / 160 in the release
      Wan22Vae vae_model(vae, fp32);
      write_pth((temp / "Wan2.2_VAE.pth").string(), random_state(*vae_model, torch::kFloat32, gen));
    } else {
      VaeConfig vae;
      vae.dim = spec.vae_dim;
      WanVae vae_model(vae, fp32);
      write_pth((temp / "Wan2.1_VAE.pth").string(), random_state(*vae_model, torch::kFloat32, gen));
    }
    if (spec.i2v && !spec.moe)
      write_demo_clip(temp / "models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth", spec, gen);

    const std::string what = spec.ti2v ? std::string("Wan2.2 TI2V-5B-style text- and image-to-video model")
                             : spec.moe
                                 ? std::string("Wan2.2 A14B-style ") + (spec.i2v ? "image-to-video" : "text-to-video") +
                                       " pair of experts (high_noise_model/, low_noise_model/)"
                                 : std::string("Wan2.1 ") + (spec.i2v ? "image-to-video" : "text-to-video") + " model";
    const std::string readme = "Wan Studio demo model: a small " + what +
                               " with RANDOM weights (written by `wan make-demo-model`).\n"
                               "It runs every stage of the pipeline (tokenizer, umT5, DiT sampling, VAE decode, "
                               "MP4) on any machine;\nits videos are structured noise. Use real Wan weights for "
                               "real videos (see the README).\n";
    AtomicFileWriter w((temp / "README.txt").string());
    w.write(readme.data(), readme.size());
    w.commit();
    if (fs::exists(target)) fs::remove(target, ec);  // the empty folder
    fs::rename(temp, target, ec);
    if (ec) throw Error(ErrorCode::kIo, "cannot rename " + temp.string() + " to " + dir + ": " + ec.message());
  } catch (...) {
    fs::remove_all(temp, ec);
    throw;
  }
}

std::string default_demo_model_dir() {
  if (const char* d = std::getenv("WAN_DEMO_MODEL_DIR"); d && *d) return d;
  if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x)
    return (fs::path(x) / "wan-studio" / "demo-model").string();
  const char* home = std::getenv("HOME");
  return (fs::path(home && *home ? home : "/tmp") / ".local" / "share" / "wan-studio" / "demo-model").string();
}

std::string ensure_demo_model(bool* created, bool i2v) {
  const std::string dir = default_demo_model_dir() + (i2v ? "-i2v" : "");
  if (created) *created = false;
  if (fs::exists(fs::path(dir) / "config.json")) return dir;
  std::error_code ec;
  fs::create_directories(fs::path(dir).parent_path(), ec);
  DemoModelSpec spec;
  spec.i2v = i2v;
  make_demo_model(dir, spec);
  if (created) *created = true;
  return dir;
}

namespace {
bool names_a_model(const ModelFiles& m) {
  return !m.model_dir.empty() || !m.dit.empty() || !m.t5.empty() || !m.vae.empty();
}
}  // namespace

ModelFiles model_files_or_demo(const GenerationRequest& request) {
  ModelFiles m = request.model;
  if (names_a_model(m)) return m;
  const std::string dir = default_demo_model_dir() + (request_task(request) == Task::kImageToVideo ? "-i2v" : "");
  std::error_code ec;
  if (fs::is_regular_file(fs::path(dir) / "config.json", ec)) m.model_dir = dir;
  return m;
}

std::string use_demo_model_if_none(GenerationRequest& request) {
  ModelFiles& m = request.model;
  if (names_a_model(m)) return "";
  bool created = false;
  const bool i2v = request_task(request) == Task::kImageToVideo;
  m.model_dir = ensure_demo_model(&created, i2v);
  return std::string("no model given: using the built-in ") + (i2v ? "image-to-video " : "") +
         "demo model (random weights, noise-like videos)" + (created ? ", just created," : "") + " at " + m.model_dir;
}

}  // namespace wan
