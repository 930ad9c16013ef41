// Reading videos and pictures as RGB frames through FFmpeg's libav* (the studio's player and history,
// and image-to-video's start pictures). No torch and no FFmpeg types.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

namespace wan {

// The most pixels a picture or video frame may have (100 megapixels): checked from the header before
// anything is decoded, so a small file that stands for gigabytes of pixels is refused
// (kInvalidArgument) instead of filling memory.
constexpr std::uint64_t kMaxPicturePixels = 100000000;

// Packed RGB24 rows, `width * 3` bytes each.
using RgbFrameFn = std::function<void(const std::uint8_t* rgb, int width, int height)>;

// Decodes the first max_frames frames (0: all) of the file's best video stream, calling on_frame for
// each. Returns the stream's frame rate (0 when it has none, as a picture). Throws wan::Error:
// kFileNotFound, kInvalidArgument (not a regular file; frames beyond kMaxPicturePixels), kCorruptFile
// (not something FFmpeg can decode, or no frame in it), kUnsupported (a build without FFmpeg).
double decode_rgb_frames(const std::string& path, int max_frames, const RgbFrameFn& on_frame);

}  // namespace wan
