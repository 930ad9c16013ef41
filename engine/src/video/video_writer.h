// Video output through FFmpeg's libraries (libavformat/libavcodec/libswscale), PNG through zlib. No
// torch types: the studio's export uses it too.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "weights/file_util.h"

namespace wan {

// Packed RGB24 frames, row-major: data[((t * height) + y) * width * 3 + x * 3 + c].
struct Rgb8Video {
  int frames = 0, width = 0, height = 0;
  std::vector<std::uint8_t> data;
  const std::uint8_t* frame(int t) const { return data.data() + static_cast<std::size_t>(t) * width * height * 3; }
};

struct VideoEncodeOptions {
  int fps = 16;
  int crf = 19;  // libx264 constant rate factor, 0..51
  std::string preset = "medium";
};

// False where the engine was built without FFmpeg (then encode_video throws kUnsupported).
bool can_encode_video();

// True for the container extensions encode_video accepts (.mp4, .mkv, .mov).
bool is_supported_video_extension(const std::string& path);

// Encodes H.264 (libx264, yuv420p, BT.601 limited range) into `path`'s container, writing to a
// temporary name beside it and renaming at the end: a failure never leaves a file that looks
// complete. Width and height must be even. Throws wan::Error(kIo / kUnsupported / kInvalidArgument).
void encode_video(const std::string& path, const Rgb8Video& video, const VideoEncodeOptions& options);
// The same, finished under the temporary name: in place once the returned rename is committed.
PendingRename encode_video_staged(const std::string& path, const Rgb8Video& video, const VideoEncodeOptions& options);

// Writes frame t as a PNG (atomically). Throws wan::Error.
void write_png(const std::string& path, const Rgb8Video& video, int t);

// Writes every frame as dir/frame_00000.png ... into a temporary folder renamed to dir at the end.
// dir must not exist yet.
void write_png_frames(const std::string& dir, const Rgb8Video& video);
// The same, finished under the temporary folder: in place once the returned rename is committed.
PendingRename write_png_frames_staged(const std::string& dir, const Rgb8Video& video);

}  // namespace wan
