// Decodes a video file (the engine's MP4s, or anything FFmpeg reads) into RGB frames for the player,
// the history thumbnails and PNG export, through the engine's decoder (wan/video_decode.h).
#pragma once
#include <QImage>
#include <QString>
#include <QVector>

namespace wan_ui {

struct DecodedVideo {
  QVector<QImage> frames;
  double fps = 16;
  QString error;  // non-empty when the file could not be read
};

// max_frames: stop after this many (0: all). Frames are QImage::Format_RGB888.
DecodedVideo readVideo(const QString& path, int max_frames = 0);

}  // namespace wan_ui
