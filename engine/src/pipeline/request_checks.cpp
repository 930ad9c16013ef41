#include "pipeline/request_checks.h"

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>

#include "pipeline/rank_hooks.h"
#include "video/video_writer.h"
#include "wan/error.h"
#include "weights/file_util.h"

namespace wan {
namespace fs = std::filesystem;
namespace {

Error invalid(const std::string& message) { return Error(ErrorCode::kInvalidArgument, message); }

// The folder exists, is a folder, takes a new file (a probe is created and removed: permissions,
// read-only mounts and full quotas all show) and has room for `bytes`. Checked before anything loads,
// not found after the sampling.
void check_output_parent(const std::string& path, const char* flag, std::int64_t bytes) {
  const fs::path parent = fs::path(path).parent_path();
  const std::string folder = parent.empty() ? std::string(".") : parent.string();
  std::error_code ec;
  if (!parent.empty() && fs::exists(parent, ec) && !fs::is_directory(parent, ec))
    throw invalid(std::string(flag) + " " + path + ": " + parent.string() + " is a file, not a folder");
  if (!parent.empty() && !fs::is_directory(parent, ec))
    throw invalid(std::string(flag) + " " + path + ": folder " + parent.string() + " does not exist");
  if (fs::is_directory(path)) throw invalid(std::string(flag) + " " + path + ": is a folder");
  std::string probe = (fs::path(folder) / ".wan-write-probe-XXXXXX").string();
  const int fd = mkstemp(probe.data());
  if (fd < 0)
    throw Error(ErrorCode::kIo, std::string(flag) + " " + path + ": cannot write into folder " + folder + " (" +
                                    std::strerror(errno) + "); pick a folder you can write to");
  close(fd);
  fs::remove(probe, ec);
  const fs::space_info space = fs::space(folder, ec);
  if (!ec && bytes > 0 && space.available < static_cast<std::uintmax_t>(bytes))
    throw Error(ErrorCode::kIo, std::string(flag) + " " + path + ": folder " + folder + " has " +
                                    std::to_string(space.available >> 20) + " MiB free and this run needs at least " +
                                    std::to_string((bytes >> 20) + 1) +
                                    " MiB there; free some space or pick another folder");
}

// What a run writes at least, for the free-space check: its latent in float32 (16 channels, the Wan2.1
// VAE's z_dim; 4x time and 8x space compression) and 1 MiB for the sidecar and the container.
std::int64_t least_output_bytes(const GenerationRequest& r) {
  const std::int64_t f_lat = r.frames >= 1 ? (r.frames - 1) / 4 + 1 : 1;
  return 16 * f_lat * std::max(1, r.height / 8) * std::max(1, r.width / 8) * 4 + (std::int64_t{1} << 20);
}

// The sidecar a run writes beside its output replaces a file of that name only when that file is an
// earlier sidecar (the video beside it is replaced too); anything else is the user's and stays.
// The sidecar a run writes beside its output replaces a file of that name only when that file is an
// earlier sidecar of this same output (the video beside it is replaced too); anything else is the
// user's, or the settings of another video that shares the stem (x.mp4 and x.mov both use x.json), and
// stays.
void check_sidecar_free(const std::string& sidecar, const std::string& flag, const std::string& output,
                        bool overwrite) {
  std::error_code ec;
  if (!something_at(sidecar)) return;
  bool ours = false;
  std::string other;  // the output an earlier sidecar describes, when it is another file that exists
  try {
    const nlohmann::json j = nlohmann::json::parse(read_text_file(sidecar));
    ours = j.is_object() && ((j.value("format", "").rfind("wan-studio-sidecar/", 0) == 0) ||
                             (j.contains("outputs") && j.contains("prompt") && j.contains("seed")));
    if (ours && j.contains("outputs") && j["outputs"].is_object()) {
      const nlohmann::json& outputs = j["outputs"];
      for (const char* key : {"video", "frames_dir"})
        if (outputs.contains(key) && outputs[key].is_string()) {
          const fs::path described = outputs[key].get<std::string>();
          if (!described.empty() &&
              fs::absolute(described).lexically_normal() != fs::absolute(output).lexically_normal() &&
              fs::exists(described, ec))
            other = described.string();
        }
    }
  } catch (const std::exception&) {
  }
  if (!ours)
    throw invalid(flag + " " + output + ": the run's settings go to " + sidecar +
                  ", which exists and is not a sidecar of an earlier run; pick another name or move that file");
  if (!other.empty())
    throw invalid(flag + " " + output + ": the run's settings go to " + sidecar + ", which holds the settings of " +
                  other + "; pick another name (the two share a name up to the extension)");
  if (!overwrite)
    throw invalid(flag + " " + output + ": " + sidecar +
                  " exists (the settings of an earlier run); pick another name, or add --overwrite to replace the "
                  "video and its settings");
}

// An existing output is replaced only with --overwrite.
void check_not_there(const std::string& path, const std::string& flag, bool overwrite) {
  if (!overwrite && something_at(path))
    throw invalid(flag + " " + path + " exists; pick another name, or add --overwrite to replace it");
}

}  // namespace

void validate_outputs(const GenerationRequest& r, bool require_output) {
  if (require_output && r.output.empty() && r.frames_dir.empty() && r.save_latent.empty())
    throw invalid("no output: give --output FILE.mp4, --frames-dir DIR or --save-latent FILE.safetensors");
  if (!r.output.empty()) {
    if (!is_supported_video_extension(r.output))
      throw invalid("--output " + r.output + ": unsupported video file type; use .mp4, .mkv or .mov");
    if (!can_encode_video())
      throw Error(ErrorCode::kUnsupported, "--output " + r.output +
                                               ": this build has no FFmpeg (-DWAN_WITH_FFMPEG=OFF); "
                                               "use --frames-dir DIR or --save-latent FILE, or rebuild with FFmpeg");
    check_output_parent(r.output, "--output", least_output_bytes(r));
    check_not_there(r.output, "--output", r.overwrite);
    check_sidecar_free(fs::path(r.output).replace_extension(".json").string(), "--output", r.output, r.overwrite);
  }
  // Every path the run writes (or reads, for --decode-latent) is a different one: a clash would only
  // show after the sampling.
  std::vector<std::pair<std::string, std::string>> paths;  // what, path
  if (!r.output.empty()) {
    paths.emplace_back("--output", r.output);
    paths.emplace_back("the settings of " + r.output, fs::path(r.output).replace_extension(".json").string());
  }
  if (!r.frames_dir.empty()) {
    paths.emplace_back("--frames-dir", r.frames_dir);
    if (r.output.empty()) paths.emplace_back("the settings of " + r.frames_dir, r.frames_dir + ".json");
  }
  if (!r.save_latent.empty()) paths.emplace_back("--save-latent", r.save_latent);
  if (!r.decode_latent.empty()) paths.emplace_back("--decode-latent", r.decode_latent);
  if (r.decode_latent.empty() && r.save_latent.empty() && (!r.output.empty() || !r.frames_dir.empty()))
    paths.emplace_back("the latent the run keeps while it decodes", rescue_latent_path(r));
  for (std::size_t i = 0; i < paths.size(); ++i)
    for (std::size_t j = i + 1; j < paths.size(); ++j)
      if (fs::absolute(paths[i].second).lexically_normal() == fs::absolute(paths[j].second).lexically_normal())
        throw invalid(paths[j].first + " (" + paths[j].second + ") is the same path as " + paths[i].first +
                      "; name them differently");
  if (!r.frames_dir.empty()) {
    if (something_at(r.frames_dir))
      throw invalid("--frames-dir " + r.frames_dir + ": already exists; PNG frames go into a new folder");
    check_output_parent(r.frames_dir, "--frames-dir", least_output_bytes(r));
    if (r.output.empty()) check_sidecar_free(r.frames_dir + ".json", "--frames-dir", r.frames_dir, r.overwrite);
  }
  if (!r.save_latent.empty()) {
    if (fs::path(r.save_latent).extension() != ".safetensors")
      throw invalid("--save-latent " + r.save_latent + ": the file name must end in .safetensors");
    check_output_parent(r.save_latent, "--save-latent", least_output_bytes(r));
    check_not_there(r.save_latent, "--save-latent", r.overwrite);
  }
  // Without --save-latent a sampling run keeps its latent at the rescue path while it decodes (and for
  // good when decoding fails): a file already there, kept by an earlier run or the user's, is never
  // replaced.
  if (r.decode_latent.empty() && r.save_latent.empty() && (!r.output.empty() || !r.frames_dir.empty())) {
    const std::string rescue = rescue_latent_path(r);
    if (something_at(rescue))
      throw invalid(rescue +
                    " exists (a latent kept by an earlier run, or a file of yours), and this run would keep its "
                    "latent there: decode it with `wan generate --decode-latent " +
                    rescue + " --model ... --output ...`, move it, or pick another output name");
  }
  if (r.fps && (*r.fps < 1 || *r.fps > 240))
    throw invalid("--fps must be between 1 and 240 (got " + std::to_string(*r.fps) + ")");
  if (r.crf < 0 || r.crf > 51) throw invalid("--crf must be between 0 and 51 (got " + std::to_string(r.crf) + ")");
}

std::size_t invalid_utf8_at(const std::string& text) {
  const auto* b = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  for (std::size_t i = 0; i < n;) {
    const unsigned char c = b[i];
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return i;
    }
    if (i + len > n) return i;
    for (std::size_t k = 1; k < len; ++k) {
      if ((b[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (b[i + k] & 0x3F);
    }
    const std::uint32_t min_for_len[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_for_len[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return std::string::npos;
}

}  // namespace wan
