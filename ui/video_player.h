// The result player: play/pause, seek slider, frame step, loop, fps; export MP4 or PNG frames, open
// the folder. Frames are decoded once into memory (a limit named in the README).
#pragma once
#include <QImage>
#include <QTimer>
#include <QVector>
#include <QWidget>

class QCheckBox;
class QLabel;
class QPushButton;
class QSlider;
class QDoubleSpinBox;

namespace wan_ui {

class VideoPlayer : public QWidget {
  Q_OBJECT
 public:
  explicit VideoPlayer(QWidget* parent = nullptr);

  bool load(const QString& video_path, QString* error = nullptr);
  void clear();
  QString videoPath() const { return path_; }
  int frameCount() const { return frames_.size(); }
  int currentFrame() const { return current_; }
  bool isPlaying() const { return timer_.isActive(); }

  // Exports; return an error message, empty on success.
  QString exportMp4(const QString& target) const;
  QString exportPngFrames(const QString& folder) const;

 public slots:
  void play();
  void pause();
  void togglePlay();
  void stepFrames(int delta);
  void seek(int frame);

 private:
  void showFrame();
  void resizeEvent(QResizeEvent* event) override;

  QString path_;
  QVector<QImage> frames_;
  int current_ = 0;
  QTimer timer_;
  QLabel* screen_;
  QLabel* position_;
  QSlider* slider_;
  QPushButton *play_, *prev_, *next_, *export_mp4_, *export_png_, *open_folder_;
  QCheckBox* loop_;
  QDoubleSpinBox* fps_;
};

}  // namespace wan_ui
