#include "generation_form.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QImageReader>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSignalBlocker>
#include <QSpinBox>

namespace wan_ui {
namespace {

const QList<QSize> kSizes = {{832, 480}, {480, 832}, {1280, 720}, {720, 1280}};

}  // namespace

GenerationForm::GenerationForm(QWidget* parent) : QWidget(parent) {
  prompt_ = new QPlainTextEdit;
  prompt_->setObjectName("prompt");
  prompt_->setPlaceholderText("What the video shows, e.g. \"A red fox runs through fresh snow at dawn\"");
  prompt_->setMaximumHeight(80);
  negative_ = new QPlainTextEdit;
  negative_->setObjectName("negativePrompt");
  negative_->setPlaceholderText("Negative prompt (empty: Wan2.1's default)");
  negative_->setMaximumHeight(50);
  size_ = new QComboBox;
  for (const QSize& s : kSizes) size_->addItem(QString("%1 x %2").arg(s.width()).arg(s.height()));
  size_->addItem("Custom");
  width_ = new QSpinBox;
  height_ = new QSpinBox;
  for (QSpinBox* s : {width_, height_}) {
    s->setRange(16, 4096);
    s->setSingleStep(16);
  }
  frames_ = new QSpinBox;
  frames_->setRange(1, 1001);
  frames_->setSingleStep(4);
  frames_->setToolTip("4n + 1 frames (81 = 5 s at 16 fps)");
  steps_ = new QSpinBox;
  steps_->setObjectName("steps");
  steps_->setRange(0, 200);  // 0: the task's default
  shift_ = new QDoubleSpinBox;
  shift_->setObjectName("shift");
  shift_->setRange(0, 50);  // 0: the task's default (a shift must be > 0)
  shift_->setSingleStep(0.5);
  guidance_ = new QDoubleSpinBox;
  guidance_->setObjectName("guidance");
  guidance_->setRange(-0.5, 30);  // the minimum: the task's default
  guidance_->setSingleStep(0.5);
  sampler_ = new QComboBox;
  sampler_->addItems({"unipc", "dpm++"});
  random_seed_ = new QCheckBox("random");
  seed_ = new QLineEdit;
  seed_->setValidator(nullptr);
  image_ = new QLineEdit;
  image_->setObjectName("startImage");
  image_->setPlaceholderText("PNG or JPEG: the first frame of the video");
  image_->setToolTip(
      "Image-to-video: the video starts from this picture and keeps its aspect; the size below is the "
      "largest area (as Wan2.1's max_area).");
  image_preview_ = new QLabel;
  image_preview_->setObjectName("startImagePreview");
  image_preview_->setFixedHeight(40);
  pick_image_ = new QPushButton("…");
  connect(pick_image_, &QPushButton::clicked, this, [this] {
    const QString f = QFileDialog::getOpenFileName(this, "Start picture", image_->text(),
                                                   "Pictures (*.png *.jpg *.jpeg *.webp *.bmp);;All files (*)");
    if (!f.isEmpty()) setStartImage(f);
  });
  connect(image_, &QLineEdit::editingFinished, this, [this] { setStartImage(image_->text()); });
  output_ = new QLineEdit;
  output_->setObjectName("outputFolder");
  auto* browse = new QPushButton("…");
  connect(browse, &QPushButton::clicked, this, [this] {
    const QString d = QFileDialog::getExistingDirectory(this, "Output folder", output_->text());
    if (!d.isEmpty()) output_->setText(d);
  });

  auto* form = new QFormLayout(this);
  auto* image_row = new QHBoxLayout;
  image_row->addWidget(image_);
  image_row->addWidget(pick_image_);
  image_row->addWidget(image_preview_);
  image_label_ = new QLabel;
  form->addRow(image_label_, image_row);
  form->addRow("Prompt", prompt_);
  form->addRow("Negative", negative_);
  auto* size_row = new QHBoxLayout;
  size_row->addWidget(size_);
  size_row->addWidget(width_);
  size_row->addWidget(height_);
  size_label_ = new QLabel("Size");
  form->addRow(size_label_, size_row);
  auto* row2 = new QHBoxLayout;
  row2->addWidget(frames_);
  row2->addWidget(steps_);
  row2->addWidget(sampler_);
  form->addRow("Frames / steps / sampler", row2);
  auto* row3 = new QHBoxLayout;
  row3->addWidget(shift_);
  row3->addWidget(guidance_);
  form->addRow("Shift / guidance", row3);
  auto* seed_row = new QHBoxLayout;
  seed_row->addWidget(random_seed_);
  seed_row->addWidget(seed_);
  form->addRow("Seed", seed_row);
  auto* out_row = new QHBoxLayout;
  out_row->addWidget(output_);
  out_row->addWidget(browse);
  form->addRow("Output folder", out_row);

  connect(size_, qOverload<int>(&QComboBox::currentIndexChanged), this, &GenerationForm::onSizePreset);
  connect(random_seed_, &QCheckBox::toggled, seed_, &QLineEdit::setDisabled);
  for (QSpinBox* s : {width_, height_, frames_, steps_})
    connect(s, qOverload<int>(&QSpinBox::valueChanged), this, &GenerationForm::changed);
  for (QSpinBox* s : {width_, height_})
    connect(s, qOverload<int>(&QSpinBox::valueChanged), this, &GenerationForm::showTaskDefaults);
  connect(prompt_, &QPlainTextEdit::textChanged, this, &GenerationForm::changed);
  setRequest(wan::GenerationRequest{});
  setImageToVideo(false);
}

void GenerationForm::setImageToVideo(bool i2v) {
  i2v_ = i2v;
  image_label_->setText(i2v ? "Start picture" : "Start picture (I2V only)");
  image_->setEnabled(i2v);
  pick_image_->setEnabled(i2v);
  size_label_->setText(i2v ? "Size (largest area)" : "Size");
  showTaskDefaults();
  emit changed();
}

void GenerationForm::showTaskDefaults() {
  const wan::TaskDefaults d =
      wan::task_defaults(i2v_ ? wan::Task::kImageToVideo : wan::Task::kTextToVideo, width_->value(), height_->value());
  steps_->setSpecialValueText(QString("default (%1)").arg(d.steps));
  shift_->setSpecialValueText(QString("default (%1)").arg(d.shift));
  guidance_->setSpecialValueText(QString("default (%1)").arg(d.guidance));
  const QString tip = "default: the task's own value (Wan2.1's configs and generate.py), resolved by the engine";
  for (QAbstractSpinBox* b : std::initializer_list<QAbstractSpinBox*>{steps_, shift_, guidance_}) b->setToolTip(tip);
}

QSize GenerationForm::videoSize() const {
  const QSize area(width_->value(), height_->value());
  if (!i2v_ || !image_size_.isValid()) return area;
  const auto s = wan::image_to_video_size(area.width(), area.height(), image_size_.width(), image_size_.height());
  return s[0] > 0 && s[1] > 0 ? QSize(static_cast<int>(s[0]), static_cast<int>(s[1])) : area;
}

QString GenerationForm::startImage() const { return image_->text().trimmed(); }

void GenerationForm::setStartImage(const QString& path) {
  image_->setText(path);
  QImageReader reader;
  if (!path.isEmpty()) reader.setFileName(path);
  const QSize size = path.isEmpty() ? QSize() : reader.size();
  QImage thumb;
  if (size.isValid()) {
    reader.setScaledSize(size.scaled(72, 40, Qt::KeepAspectRatio));
    thumb = reader.read();
  }
  image_size_ = size;
  image_preview_->setPixmap(thumb.isNull() ? QPixmap() : QPixmap::fromImage(thumb));
  image_preview_->setToolTip(size.isValid() ? QString("%1 x %2").arg(size.width()).arg(size.height()) : QString());
  emit changed();
}

void GenerationForm::onSizePreset(int index) {
  const bool custom = index >= kSizes.size();
  width_->setEnabled(custom);
  height_->setEnabled(custom);
  if (!custom) {
    width_->setValue(kSizes[index].width());
    height_->setValue(kSizes[index].height());
  }
}

wan::GenerationRequest GenerationForm::request() const {
  wan::GenerationRequest r;
  r.prompt = prompt_->toPlainText().trimmed().toStdString();
  r.negative_prompt = negative_->toPlainText().trimmed().toStdString();
  r.width = width_->value();
  r.height = height_->value();
  r.frames = frames_->value();
  if (steps_->value() != steps_->minimum()) r.steps = steps_->value();
  r.sampler = wan::parse_sampler(sampler_->currentText().toStdString());
  if (shift_->value() != shift_->minimum()) r.shift = shift_->value();
  if (guidance_->value() != guidance_->minimum()) r.guidance = guidance_->value();
  bool ok = false;
  const qint64 seed = seed_->text().toLongLong(&ok);
  r.seed = random_seed_->isChecked() || !ok ? -1 : seed;
  if (i2v_) r.image = startImage().toStdString();
  return r;
}

void GenerationForm::setRequest(const wan::GenerationRequest& r) {
  prompt_->setPlainText(QString::fromStdString(r.prompt));
  negative_->setPlainText(QString::fromStdString(r.negative_prompt));
  int preset = kSizes.size();
  for (int i = 0; i < kSizes.size(); ++i)
    if (kSizes[i] == QSize(r.width, r.height)) preset = i;
  size_->setCurrentIndex(preset);
  onSizePreset(preset);
  width_->setValue(r.width);
  height_->setValue(r.height);
  frames_->setValue(r.frames);
  steps_->setValue(r.steps.value_or(steps_->minimum()));
  sampler_->setCurrentText(wan::sampler_name(r.sampler));
  shift_->setValue(r.shift.value_or(shift_->minimum()));
  guidance_->setValue(r.guidance.value_or(guidance_->minimum()));
  random_seed_->setChecked(r.seed < 0);
  seed_->setText(r.seed < 0 ? QString() : QString::number(r.seed));
  seed_->setDisabled(r.seed < 0);
  if (!r.image.empty()) setStartImage(QString::fromStdString(r.image));
}

QString GenerationForm::outputFolder() const { return output_->text(); }
void GenerationForm::setOutputFolder(const QString& folder) { output_->setText(folder); }

}  // namespace wan_ui
