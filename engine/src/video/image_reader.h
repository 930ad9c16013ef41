// Reads a still picture (PNG, JPEG, WebP, BMP, ... whatever FFmpeg's image decoders take) as packed
// RGB24, the way image-to-video's `Image.open(path).convert("RGB")` sees it: alpha dropped, palette
// and grey expanded. No torch types.
#pragma once
#include <string>

#include "video/video_writer.h"

namespace wan {

// One frame. Throws wan::Error: kFileNotFound (no such file), kCorruptFile (not a picture FFmpeg can
// decode), kUnsupported (a build without FFmpeg).
Rgb8Video read_image(const std::string& path);

}  // namespace wan
