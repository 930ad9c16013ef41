#include "video/image_reader.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "video/png_reader.h"
#include "wan/error.h"
#include "wan/video_decode.h"

namespace wan {

namespace {

// PNG files are decoded by the engine itself (exact, and without FFmpeg); others by FFmpeg.
bool read_png_if_png(const std::string& path, Rgb8Video* out) {
  if (!std::filesystem::exists(path)) throw Error(ErrorCode::kFileNotFound, path + ": no such picture file");
  if (!std::filesystem::is_regular_file(path))
    throw Error(ErrorCode::kInvalidArgument, path + " is not a regular file (a folder, pipe or device)");
  std::ifstream in(path, std::ios::binary);
  // The signature first: other formats are left to FFmpeg without reading the file here.
  std::vector<std::uint8_t> bytes(8, 0);
  in.read(reinterpret_cast<char*>(bytes.data()), 8);
  if (in.gcount() < 8 || !is_png(bytes)) return false;
  bytes.insert(bytes.end(), std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (in.bad()) throw Error(ErrorCode::kIo, path + ": cannot read the picture file");
  *out = decode_png(bytes, path);
  return true;
}

}  // namespace

Rgb8Video read_image(const std::string& path) {
  Rgb8Video picture;
  if (read_png_if_png(path, &picture)) return picture;
  try {
    decode_rgb_frames(path, 1, [&](const std::uint8_t* rgb, int width, int height) {
      picture.frames = 1;
      picture.width = width;
      picture.height = height;
      picture.data.assign(rgb, rgb + static_cast<std::size_t>(width) * height * 3);
    });
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kCorruptFile) throw;
    throw Error(ErrorCode::kCorruptFile,
                std::string(e.what()) + ": not a picture this build can read; use a PNG or JPEG file");
  }
  return picture;
}

}  // namespace wan
