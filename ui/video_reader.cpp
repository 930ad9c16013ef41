#include "video_reader.h"

#include <cstring>

#include "wan/error.h"
#include "wan/video_decode.h"

namespace wan_ui {

DecodedVideo readVideo(const QString& path, int max_frames) {
  DecodedVideo out;
  try {
    const double fps =
        wan::decode_rgb_frames(path.toStdString(), max_frames, [&](const std::uint8_t* rgb, int width, int height) {
          QImage image(width, height, QImage::Format_RGB888);
          for (int y = 0; y < height; ++y)
            std::memcpy(image.scanLine(y), rgb + static_cast<std::size_t>(y) * width * 3, width * 3);
          out.frames.push_back(image);
        });
    if (fps > 0) out.fps = fps;
  } catch (const wan::Error& e) {
    out.frames.clear();
    out.error = QString::fromStdString(e.what());
  }
  return out;
}

}  // namespace wan_ui
