// PNG pictures without FFmpeg (zlib only): what read_image uses for PNG files.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "video/video_writer.h"

namespace wan {

// Throws wan::Error(kInvalidArgument) naming `path` when width x height is above kMaxPicturePixels
// (wan/video_decode.h): the check every picture reader makes from the header, before decoding.
void check_picture_pixels(const std::string& path, std::int64_t width, std::int64_t height);

bool is_png(const std::vector<std::uint8_t>& bytes);
// Non-interlaced PNG of any colour type and bit depth -> RGB24, as PIL's convert("RGB"): 16-bit samples
// by their high byte, palette and grey expanded, alpha dropped. Throws wan::Error(kCorruptFile) naming
// `path` for anything malformed or unsupported (interlaced files).
Rgb8Video decode_png(const std::vector<std::uint8_t>& bytes, const std::string& path);

}  // namespace wan
