// The built-in demo model: a small Wan2.1 text-to-video (or image-to-video) model, or a Wan2.2 A14B-style
// pair of experts (DemoModelSpec::moe), with random weights, written in the
// official folder layout (config.json, diffusion_pytorch_model.safetensors, the umT5 and VAE .pth
// files, google/umt5-xxl/spiece.model trained by SentencePiece on a built-in text). It exercises
// every stage on any machine; its videos are structured noise, not pictures.
#pragma once
#include <cstdint>
#include <string>

namespace wan {

struct DemoModelSpec {
  std::int64_t dit_dim = 256;  // 2 heads of 128, as the released models' head width
  std::int64_t dit_layers = 4;
  std::int64_t dit_ffn = 768;
  std::int64_t t5_dim = 256;
  std::int64_t t5_layers = 2;
  std::int64_t t5_heads = 4;
  std::int64_t t5_ffn = 512;
  std::int64_t vocab = 1000;  // SentencePiece vocabulary
  std::int64_t vae_dim = 16;
  std::uint64_t seed = 2025;
  // Image-to-video: an I2V DiT (36 input channels, image embedding) and a CLIP vision tower in the
  // official open-clip .pth form (visual.* beside a token textual.* part and log_scale).
  bool i2v = false;
  std::int64_t clip_dim = 128;                          // 8 heads of 16
  std::int64_t clip_layers = 3;                         // image-to-video uses all but the last
  std::int64_t clip_image_size = 224, clip_patch = 14;  // as ViT-H/14: 257 tokens
  // Wan2.2 A14B-style: two experts with their own random weights in high_noise_model/ and
  // low_noise_model/ (config.json + safetensors each, no top-level config.json, as the official A14B
  // folders); with i2v, Wan2.2's image-to-video (y channels, no image embedding and no CLIP file).
  bool moe = false;
  // Wan2.2 TI2V-5B-style: a ti2v DiT (48 channels in and out) and the Wan2.2 VAE (Wan2.2_VAE.pth, encoder
  // width vae_dim, decoder vae_dim * 3 / 2); text- or image-to-video from one model.
  bool ti2v = false;
};

// Writes the model into `dir` (created; must not exist or be empty), through a temporary folder
// renamed at the end. Throws wan::Error.
void make_demo_model(const std::string& dir, const DemoModelSpec& spec = {});

// Where the CLI and the studio keep the demo model: $WAN_DEMO_MODEL_DIR, else
// $XDG_DATA_HOME/wan-studio/demo-model, else ~/.local/share/wan-studio/demo-model.
std::string default_demo_model_dir();

// The demo model folder, created on first use (returns true in *created when it was). i2v: the
// image-to-video demo model, in a folder beside it ("demo-model-i2v").
std::string ensure_demo_model(bool* created = nullptr, bool i2v = false);

// A request that names no model (no folder, DiT, T5 or VAE) gets the demo model of its task, created on
// first use. Returns the note to show the user ("" when the request names a model).
struct GenerationRequest;
std::string use_demo_model_if_none(GenerationRequest& request);

// The model files a request will run: its own, or (naming none) the demo model of its task when that
// exists already; empty when it names none and the demo is not yet written. Creates nothing.
struct ModelFiles;
ModelFiles model_files_or_demo(const GenerationRequest& request);

}  // namespace wan
