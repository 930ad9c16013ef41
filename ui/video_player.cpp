#include "video_player.h"

#include <QCheckBox>
#include <QDesktopServices>
#include <QDir>
#include <QDoubleSpinBox>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QMessageBox>
#include <QPushButton>
#include <QSlider>
#include <QUrl>
#include <QVBoxLayout>

#include "video_reader.h"

namespace wan_ui {

VideoPlayer::VideoPlayer(QWidget* parent) : QWidget(parent) {
  screen_ = new QLabel("No video yet: generate one, or pick one in the history.");
  screen_->setObjectName("playerScreen");
  screen_->setAlignment(Qt::AlignCenter);
  screen_->setMinimumSize(240, 135);
  screen_->setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Expanding);
  screen_->setStyleSheet("background: #111; color: #bbb;");
  play_ = new QPushButton("Play");
  play_->setObjectName("playButton");
  prev_ = new QPushButton("◀ Frame");
  next_ = new QPushButton("Frame ▶");
  slider_ = new QSlider(Qt::Horizontal);
  slider_->setObjectName("seekSlider");
  position_ = new QLabel("0 / 0");
  loop_ = new QCheckBox("Loop");
  loop_->setChecked(true);
  fps_ = new QDoubleSpinBox;
  fps_->setRange(1, 120);
  fps_->setValue(16);
  fps_->setSuffix(" fps");
  export_mp4_ = new QPushButton("Export MP4…");
  export_png_ = new QPushButton("Export PNG frames…");
  open_folder_ = new QPushButton("Open folder");

  // Two rows (seek; buttons) so the player fits the middle column at 1280x720.
  auto* seek_row = new QHBoxLayout;
  seek_row->addWidget(slider_, 1);
  seek_row->addWidget(position_);
  auto* controls = new QHBoxLayout;
  for (QWidget* w : {static_cast<QWidget*>(play_), static_cast<QWidget*>(prev_), static_cast<QWidget*>(next_)})
    controls->addWidget(w);
  controls->addStretch(1);
  controls->addWidget(loop_);
  controls->addWidget(fps_);
  auto* actions = new QHBoxLayout;
  actions->addWidget(export_mp4_);
  actions->addWidget(export_png_);
  actions->addWidget(open_folder_);
  actions->addStretch(1);
  auto* layout = new QVBoxLayout(this);
  layout->addWidget(screen_, 1);
  layout->addLayout(seek_row);
  layout->addLayout(controls);
  layout->addLayout(actions);

  connect(play_, &QPushButton::clicked, this, &VideoPlayer::togglePlay);
  connect(prev_, &QPushButton::clicked, this, [this] { stepFrames(-1); });
  connect(next_, &QPushButton::clicked, this, [this] { stepFrames(1); });
  connect(slider_, &QSlider::valueChanged, this, &VideoPlayer::seek);
  connect(fps_, qOverload<double>(&QDoubleSpinBox::valueChanged), this,
          [this](double fps) { timer_.setInterval(int(1000.0 / fps)); });
  connect(&timer_, &QTimer::timeout, this, [this] {
    if (current_ + 1 >= frames_.size() && !loop_->isChecked()) return pause();
    seek((current_ + 1) % std::max(1, static_cast<int>(frames_.size())));
  });
  connect(export_mp4_, &QPushButton::clicked, this, [this] {
    const QString target =
        QFileDialog::getSaveFileName(this, "Export MP4", QFileInfo(path_).fileName(), "MP4 video (*.mp4)");
    if (target.isEmpty()) return;
    if (QString e = exportMp4(target); !e.isEmpty()) QMessageBox::warning(this, "Export MP4", e);
  });
  connect(export_png_, &QPushButton::clicked, this, [this] {
    const QString folder = QFileDialog::getExistingDirectory(this, "Export PNG frames into");
    if (folder.isEmpty()) return;
    if (QString e = exportPngFrames(folder); !e.isEmpty()) QMessageBox::warning(this, "Export PNG frames", e);
  });
  connect(open_folder_, &QPushButton::clicked, this,
          [this] { QDesktopServices::openUrl(QUrl::fromLocalFile(QFileInfo(path_).absolutePath())); });
  timer_.setInterval(1000 / 16);
  clear();
}

bool VideoPlayer::load(const QString& video_path, QString* error) {
  pause();
  DecodedVideo v = readVideo(video_path);
  if (!v.error.isEmpty()) {
    if (error) *error = v.error;
    clear();
    screen_->setText(v.error);
    return false;
  }
  path_ = video_path;
  frames_ = std::move(v.frames);
  fps_->setValue(v.fps);
  slider_->setRange(0, frames_.size() - 1);
  for (QWidget* w :
       std::initializer_list<QWidget*>{play_, prev_, next_, slider_, export_mp4_, export_png_, open_folder_})
    w->setEnabled(true);
  current_ = -1;
  seek(0);
  return true;
}

void VideoPlayer::clear() {
  pause();
  path_.clear();
  frames_.clear();
  current_ = 0;
  slider_->setRange(0, 0);
  position_->setText("0 / 0");
  screen_->setPixmap({});
  for (QWidget* w :
       std::initializer_list<QWidget*>{play_, prev_, next_, slider_, export_mp4_, export_png_, open_folder_})
    w->setEnabled(false);
}

void VideoPlayer::play() {
  if (frames_.isEmpty()) return;
  timer_.start();
  play_->setText("Pause");
}

void VideoPlayer::pause() {
  timer_.stop();
  play_->setText("Play");
}

void VideoPlayer::togglePlay() { isPlaying() ? pause() : play(); }

void VideoPlayer::stepFrames(int delta) {
  pause();
  seek(std::clamp(current_ + delta, 0, std::max(0, static_cast<int>(frames_.size()) - 1)));
}

void VideoPlayer::seek(int frame) {
  if (frames_.isEmpty() || frame == current_ || frame < 0 || frame >= frames_.size()) return;
  current_ = frame;
  if (slider_->value() != frame) slider_->setValue(frame);
  position_->setText(QString("%1 / %2").arg(frame + 1).arg(frames_.size()));
  showFrame();
}

void VideoPlayer::showFrame() {
  if (frames_.isEmpty()) return;
  screen_->setPixmap(
      QPixmap::fromImage(frames_[current_]).scaled(screen_->size(), Qt::KeepAspectRatio, Qt::SmoothTransformation));
}

void VideoPlayer::resizeEvent(QResizeEvent* event) {
  QWidget::resizeEvent(event);
  showFrame();
}

QString VideoPlayer::exportMp4(const QString& target) const {
  if (path_.isEmpty()) return "No video loaded.";
  if (QFileInfo(target).absoluteFilePath() == QFileInfo(path_).absoluteFilePath()) return {};
  if (QFile::exists(target) && !QFile::remove(target)) return "Cannot replace " + target + ".";
  if (!QFile::copy(path_, target)) return "Cannot write " + target + ".";
  return {};
}

QString VideoPlayer::exportPngFrames(const QString& folder) const {
  if (frames_.isEmpty()) return "No video loaded.";
  if (!QDir().mkpath(folder)) return "Cannot create " + folder + ".";
  for (int i = 0; i < frames_.size(); ++i) {
    const QString file = QDir(folder).filePath(QString("frame_%1.png").arg(i, 5, 10, QChar('0')));
    if (!frames_[i].save(file, "PNG")) return "Cannot write " + file + ".";
  }
  return {};
}

}  // namespace wan_ui
