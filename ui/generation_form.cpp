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
#include <QTimer>
#include <QVBoxLayout>
#include <algorithm>
#include <tuple>

#include "wan/error.h"

namespace wan_ui {
namespace {

const QList<QSize> kSizes = {{832, 480}, {480, 832}, {1280, 720}, {720, 1280}};

// The nearest of offset + k * multiple within [lo, hi] (ties: the larger).
int snapTo(int v, int lo, int hi, int multiple, int offset) {
  v = std::clamp(v, lo, hi);
  const int below = offset + (v - offset) / multiple * multiple;
  int best = v - below < below + multiple - v ? below : below + multiple;
  while (best > hi) best -= multiple;
  while (best < lo) best += multiple;
  return best;
}

// A spin box that holds only the engine's valid values: a typed value off the grid (frames 18, width
// 250) is intermediate while typing and snaps to the nearest valid one when editing ends.
class SnapSpinBox : public QSpinBox {
 public:
  SnapSpinBox(int lo, int hi, int multiple, int offset) : multiple_(multiple), offset_(offset) {
    setRange(lo, hi);
    setSingleStep(multiple);
    setCorrectionMode(QAbstractSpinBox::CorrectToNearestValue);
  }
  int snap(int v) const { return snapTo(v, minimum(), maximum(), multiple_, offset_); }
  void setSnappedValue(int v) { setValue(snap(v)); }

 protected:
  // A number off the grid or out of the range (steps 5000) stays as typed until editing ends, then
  // becomes the nearest valid value (1000): never a different number made by dropping a keystroke.
  QValidator::State validate(QString& text, int& pos) const override {
    if (!specialValueText().isEmpty() && text == specialValueText()) return QValidator::Acceptable;
    bool ok = false;
    const int v = locale().toInt(text.trimmed(), &ok);
    if (ok) return v == snap(v) ? QValidator::Acceptable : QValidator::Intermediate;
    return QSpinBox::validate(text, pos);
  }
  void fixup(QString& text) const override {
    bool ok = false;
    const int v = locale().toInt(text.trimmed(), &ok);
    if (ok) text = textFromValue(snap(v));
  }

 private:
  int multiple_, offset_;
};

SnapSpinBox* snapBox(QSpinBox* b) { return static_cast<SnapSpinBox*>(b); }

}  // namespace

int GenerationForm::snapSide(int v) { return snapTo(v, wan::kMinSide, wan::kMaxSide, wan::kSideMultiple, 0); }
int GenerationForm::snapFrames(int v) { return snapTo(v, 1, wan::kMaxFrames, 4, 1); }
int GenerationForm::snapSteps(int v) { return std::clamp(v, 0, wan::kMaxSteps); }

GenerationForm::GenerationForm(QWidget* parent) : QWidget(parent) {
  prompt_ = new QPlainTextEdit;
  prompt_->setObjectName("prompt");
  prompt_->setPlaceholderText("What the video shows, e.g. \"A red fox runs through fresh snow at dawn\"");
  prompt_->setMaximumHeight(80);
  prompt_->setTabChangesFocus(true);  // Tab moves on to the next field, as in every other box
  negative_ = new QPlainTextEdit;
  negative_->setObjectName("negativePrompt");
  negative_->setPlaceholderText("Negative prompt (empty: Wan2.1's default)");
  negative_->setMaximumHeight(50);
  negative_->setTabChangesFocus(true);
  prompt_tokens_ = new QLabel;
  prompt_tokens_->setObjectName("promptTokens");
  negative_tokens_ = new QLabel;
  negative_tokens_->setObjectName("negativeTokens");
  for (QLabel* l : {prompt_tokens_, negative_tokens_}) {
    l->setWordWrap(true);
    l->setToolTip(
        "umT5 tokens of this text as the text encoder counts them (the end mark included); the model reads at "
        "most its text length, and the engine cuts the rest.");
  }
  token_timer_ = new QTimer(this);
  token_timer_->setSingleShot(true);
  token_timer_->setInterval(150);
  connect(token_timer_, &QTimer::timeout, this, &GenerationForm::updateTokenCounts);
  size_ = new QComboBox;
  size_->setObjectName("sizePreset");
  for (const QSize& s : kSizes) size_->addItem(QString("%1 x %2").arg(s.width()).arg(s.height()));
  size_->addItem("Custom");
  width_ = new SnapSpinBox(wan::kMinSide, wan::kMaxSide, wan::kSideMultiple, 0);
  width_->setObjectName("width");
  height_ = new SnapSpinBox(wan::kMinSide, wan::kMaxSide, wan::kSideMultiple, 0);
  height_->setObjectName("height");
  for (QSpinBox* s : {width_, height_})
    s->setToolTip(QString("A multiple of %1 from %2 to %3 (a typed value snaps to the nearest one).")
                      .arg(wan::kSideMultiple)
                      .arg(wan::kMinSide)
                      .arg(wan::kMaxSide));
  frames_ = new SnapSpinBox(1, wan::kMaxFrames, 4, 1);
  frames_->setObjectName("frames");
  frames_->setToolTip(QString("4n + 1 frames up to %1 (81 = 5 s at 16 fps; a typed value snaps to the nearest one)")
                          .arg(wan::kMaxFrames));
  steps_ = new SnapSpinBox(0, wan::kMaxSteps, 1, 0);  // 0: the task's default
  steps_->setObjectName("steps");
  shift_ = new QDoubleSpinBox;
  shift_->setObjectName("shift");
  shift_->setRange(0, 50);  // 0: the task's default (a shift must be > 0)
  shift_->setSingleStep(0.5);
  guidance_ = new QDoubleSpinBox;
  guidance_->setObjectName("guidance");
  guidance_->setRange(-0.5, 30);  // the minimum: the task's default
  guidance_->setSingleStep(0.5);
  guidance_high_ = new QDoubleSpinBox;
  guidance_high_->setObjectName("guidanceHigh");
  guidance_high_->setRange(-0.5, 30);  // the minimum: the model's default
  guidance_high_->setSingleStep(0.5);
  guidance_high_->setToolTip("Wan2.2 A14B: the high-noise expert's guidance scale (--guidance LOW,HIGH)");
  boundary_ = new QDoubleSpinBox;
  boundary_->setObjectName("boundary");
  boundary_->setRange(0, 1);  // 0: the model's default (a boundary must be > 0)
  boundary_->setDecimals(3);
  boundary_->setSingleStep(0.025);
  boundary_->setToolTip(
      "Wan2.2 A14B: the high-noise expert runs while the timestep is at least this x 1000 (--boundary)");
  sampler_ = new QComboBox;
  sampler_->setObjectName("sampler");
  sampler_->addItem("UniPC", "unipc");
  sampler_->addItem("DPM++", "dpm++");
  sampler_->addItem("4-step (distilled)", "distill");
  sampler_->setItemData(0, "Wan's default solver (--sampler unipc)", Qt::ToolTipRole);
  sampler_->setItemData(1, "DPM-Solver++ (--sampler dpm++)", Qt::ToolTipRole);
  sampler_->setItemData(2,
                        "For step-distilled models and LoRAs (LightX2V's StepDistill-CfgDistill, 4-step LoRAs):\n"
                        "timesteps 1000, 750, 500, 250, shift 5, guidance 1 (one forward per step; --sampler "
                        "distill).\nOn an ordinary model it gives a blurred video.",
                        Qt::ToolTipRole);
  cache_ = new QComboBox;
  cache_->setObjectName("stepCache");
  cache_->addItem("Off", "none");
  cache_->addItem("TeaCache", "teacache");
  cache_->addItem("MagCache", "magcache");
  cache_->setToolTip(
      "Step caching (--cache): a step whose input barely changed reuses the blocks' residual of the last\n"
      "computed step. TeaCache: Wan2.1 only (its published coefficients); MagCache: every Wan model (its\n"
      "published curves). Higher thresholds skip more steps and change the video more; 0 skips nothing.\n"
      "The first steps are never skipped (TeaCache 5, MagCache 20 %).");
  cache_threshold_ = new QDoubleSpinBox;
  cache_threshold_->setObjectName("stepCacheThreshold");
  cache_threshold_->setRange(0, 5);
  cache_threshold_->setDecimals(4);
  cache_threshold_->setSingleStep(0.01);
  cache_threshold_->setEnabled(false);
  cache_threshold_->setToolTip("TeaCache: 0.05-0.3 (the authors' 1.3B 0.05-0.08, 14B 0.14-0.2); MagCache: 0.04-0.24");
  distill_hint_ = new QLabel;
  distill_hint_->setObjectName("distillHint");
  distill_hint_->setWordWrap(true);
  distill_hint_->setStyleSheet("color: #b26a00;");
  distill_hint_->setVisible(false);
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
  connect(output_, &QLineEdit::editingFinished, this, [this] { emit outputFolderChanged(output_->text()); });
  auto* browse = new QPushButton("…");
  connect(browse, &QPushButton::clicked, this, [this] {
    const QString d = QFileDialog::getExistingDirectory(this, "Output folder", output_->text());
    if (!d.isEmpty()) {
      output_->setText(d);
      emit outputFolderChanged(d);
    }
  });

  auto* form = new QFormLayout(this);
  auto* image_row = new QHBoxLayout;
  image_row->addWidget(image_);
  image_row->addWidget(pick_image_);
  image_row->addWidget(image_preview_);
  image_label_ = new QLabel;
  form->addRow(image_label_, image_row);
  auto boxWithCounter = [](QPlainTextEdit* box, QLabel* counter) {
    auto* w = new QWidget;
    auto* l = new QVBoxLayout(w);
    l->setContentsMargins(0, 0, 0, 0);
    l->setSpacing(2);
    l->addWidget(box);
    l->addWidget(counter);
    return w;
  };
  for (auto [label, box, counter] :
       {std::tuple{"&Prompt", prompt_, prompt_tokens_}, std::tuple{"&Negative", negative_, negative_tokens_}}) {
    auto* row_label = new QLabel(label);
    row_label->setBuddy(box);  // Alt+P / Alt+N focus the box itself
    form->addRow(row_label, boxWithCounter(box, counter));
  }
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
  form->addRow(QString(), distill_hint_);
  auto* cache_row = new QHBoxLayout;
  cache_row->addWidget(cache_);
  cache_row->addWidget(cache_threshold_);
  form->addRow("Step cache / threshold", cache_row);
  auto* row3 = new QHBoxLayout;
  row3->addWidget(shift_);
  row3->addWidget(guidance_);
  form->addRow("Shift / guidance", row3);
  experts_row_ = new QWidget;
  auto* row4 = new QHBoxLayout(experts_row_);
  row4->setContentsMargins(0, 0, 0, 0);
  row4->addWidget(guidance_high_);
  row4->addWidget(boundary_);
  form->addRow("High-noise guidance / boundary", experts_row_);
  form->setRowVisible(experts_row_, false);
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
  connect(cache_, qOverload<int>(&QComboBox::currentIndexChanged), this, [this] {
    const QString kind = cache_->currentData().toString();
    cache_threshold_->setEnabled(kind != "none");
    // The authors' middle settings as a start: TeaCache 0.2 (14B), MagCache 0.12 (Wan2.1's default).
    if (kind == "teacache" && cache_threshold_->value() == 0) cache_threshold_->setValue(0.2);
    if (kind == "magcache" && cache_threshold_->value() == 0) cache_threshold_->setValue(0.12);
    emit changed();
  });
  connect(cache_threshold_, qOverload<double>(&QDoubleSpinBox::valueChanged), this, &GenerationForm::changed);
  connect(sampler_, qOverload<int>(&QComboBox::currentIndexChanged), this, [this] {
    showTaskDefaults();
    updateDistillHint();
    emit changed();
  });
  for (QSpinBox* s : {width_, height_, frames_, steps_})
    connect(s, qOverload<int>(&QSpinBox::valueChanged), this, &GenerationForm::changed);
  for (QSpinBox* s : {width_, height_})
    connect(s, qOverload<int>(&QSpinBox::valueChanged), this, &GenerationForm::showTaskDefaults);
  connect(prompt_, &QPlainTextEdit::textChanged, this, &GenerationForm::changed);
  connect(negative_, &QPlainTextEdit::textChanged, this, &GenerationForm::changed);
  for (QPlainTextEdit* box : {prompt_, negative_})
    connect(box, &QPlainTextEdit::textChanged, token_timer_, qOverload<>(&QTimer::start));
  setRequest(wan::GenerationRequest{});
  setImageToVideo(false);
}

void GenerationForm::setMixtureOfExperts(bool moe) {
  moe_ = moe;
  if (auto* form = qobject_cast<QFormLayout*>(layout())) form->setRowVisible(experts_row_, moe);
  showTaskDefaults();
  emit changed();
}

void GenerationForm::setImageToVideo(bool i2v) {
  i2v_ = i2v;
  updateImageRow();
}

void GenerationForm::setTextImageToVideo(bool ti2v) {
  ti2v_ = ti2v;
  updateImageRow();
}

void GenerationForm::updateImageRow() {
  const bool picture = i2v_ || ti2v_;
  image_label_->setText(ti2v_ ? "Start picture (optional)" : i2v_ ? "Start picture" : "Start picture (I2V only)");
  image_->setEnabled(picture);
  pick_image_->setEnabled(picture);
  size_label_->setText(i2v_ ? "Size (largest area)" : ti2v_ ? "Size (largest area with a picture)" : "Size");
  showTaskDefaults();
  emit changed();
}

void GenerationForm::showTaskDefaults() {
  // TI2V-5B takes its config's defaults in both modes (the text-to-video ones).
  const wan::Task task = i2v_ && !ti2v_ ? wan::Task::kImageToVideo : wan::Task::kTextToVideo;
  wan::TaskDefaults d = wan::task_defaults(task, width_->value(), height_->value());
  const wan::ExpertDefaults experts = wan::expert_defaults(task);
  if (moe_) d = wan::TaskDefaults{experts.steps, experts.shift, experts.guidance_low};
  const bool distill = sampler_->currentData().toString() == "distill";
  if (distill)  // the published 4-step models' settings, for every model (wan::resolve_defaults)
    d = wan::TaskDefaults{wan::kDistillDefaultSteps, wan::kDistillDefaultShift, wan::kDistillDefaultGuidance};
  guidance_high_->setSpecialValueText(QString("default (%1, or the low-noise value)")
                                          .arg(distill ? wan::kDistillDefaultGuidance : experts.guidance_high));
  boundary_->setSpecialValueText(QString("default (%1)").arg(experts.boundary));
  steps_->setSpecialValueText(QString("default (%1)").arg(d.steps));
  shift_->setSpecialValueText(QString("default (%1)").arg(d.shift));
  guidance_->setSpecialValueText(QString("default (%1)").arg(d.guidance));
  const QString tip = "default: the task's own value (Wan2.1's configs and generate.py), resolved by the engine";
  for (QAbstractSpinBox* b : std::initializer_list<QAbstractSpinBox*>{steps_, shift_, guidance_}) b->setToolTip(tip);
}

void GenerationForm::setDistilledFiles(const QStringList& names) {
  distilled_files_ = names;
  updateDistillHint();
}

QString GenerationForm::distillHint() const { return distill_hint_->isHidden() ? QString() : distill_hint_->text(); }

void GenerationForm::updateDistillHint() {
  const bool show = !distilled_files_.isEmpty() && sampler_->currentData().toString() != "distill";
  distill_hint_->setText(show ? distilled_files_.join(", ") + (distilled_files_.size() > 1 ? " look" : " looks") +
                                    " step-distilled: choose the sampler \"4-step (distilled)\" (4 steps, guidance "
                                    "1); with 50 UniPC steps such models are slow and often worse."
                              : QString());
  distill_hint_->setVisible(show);
}

QSize GenerationForm::videoSize() const {
  const QSize area(width_->value(), height_->value());
  const bool picture = i2v_ || (ti2v_ && !startImage().isEmpty());
  if (!picture || !image_size_.isValid()) return area;
  const auto s =
      ti2v_ ? wan::text_image_to_video_size(area.width(), area.height(), image_size_.width(), image_size_.height())
            : wan::image_to_video_size(area.width(), area.height(), image_size_.width(), image_size_.height());
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
  r.sampler = wan::parse_sampler(sampler_->currentData().toString().toStdString());
  // A restored request's own list, while the step count still fits it.
  if (r.sampler == wan::SamplerKind::kDistill && !denoising_step_list_.empty() &&
      (!r.steps || *r.steps == static_cast<int>(denoising_step_list_.size())))
    r.denoising_step_list = denoising_step_list_;
  if (shift_->value() != shift_->minimum()) r.shift = shift_->value();
  if (guidance_->value() != guidance_->minimum()) r.guidance = guidance_->value();
  if (moe_ && guidance_high_->value() != guidance_high_->minimum()) r.guidance_high = guidance_high_->value();
  if (moe_ && boundary_->value() != boundary_->minimum()) r.boundary = boundary_->value();
  bool ok = false;
  const qint64 seed = seed_->text().toLongLong(&ok);
  r.seed = random_seed_->isChecked() || !ok ? -1 : seed;
  if (i2v_ || ti2v_) r.image = startImage().toStdString();
  const QString cache = cache_->currentData().toString();
  if (cache != "none") {
    r.cache = restored_cache_;
    r.cache.kind = cache == "teacache" ? wan::StepCacheKind::kTeaCache : wan::StepCacheKind::kMagCache;
    if (r.cache.kind != restored_cache_.kind) {  // another kind: its own defaults, not the restored ones
      const wan::StepCacheKind kind = r.cache.kind;
      r.cache = wan::StepCacheSettings{};
      r.cache.kind = kind;
    }
    r.cache.threshold = cache_threshold_->value();
  }
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
  snapBox(width_)->setSnappedValue(r.width);
  snapBox(height_)->setSnappedValue(r.height);
  snapBox(frames_)->setSnappedValue(r.frames);
  snapBox(steps_)->setSnappedValue(r.steps.value_or(steps_->minimum()));
  sampler_->setCurrentIndex(std::max(0, sampler_->findData(QString(wan::sampler_name(r.sampler)))));
  denoising_step_list_ = r.denoising_step_list;
  restored_cache_ = r.cache;
  {
    // As restored, without the "a start for a new choice" defaults of the box's own signal.
    const QSignalBlocker block(cache_);
    const std::string name = wan::step_cache_name(r.cache);
    cache_->setCurrentIndex(std::max(0, cache_->findData(QString::fromStdString(name.substr(0, name.find(':'))))));
  }
  cache_threshold_->setEnabled(r.cache.enabled());
  cache_threshold_->setValue(r.cache.threshold);
  shift_->setValue(r.shift.value_or(shift_->minimum()));
  guidance_->setValue(r.guidance.value_or(guidance_->minimum()));
  guidance_high_->setValue(r.guidance_high.value_or(guidance_high_->minimum()));
  boundary_->setValue(r.boundary.value_or(boundary_->minimum()));
  random_seed_->setChecked(r.seed < 0);
  seed_->setText(r.seed < 0 ? QString() : QString::number(r.seed));
  seed_->setDisabled(r.seed < 0);
  if (!r.image.empty()) setStartImage(QString::fromStdString(r.image));
}

void GenerationForm::setTokenCounter(std::shared_ptr<const wan::PromptTokenCounter> counter, const QString& note) {
  token_counter_ = std::move(counter);
  token_note_ = note;
  updateTokenCounts();
}

QString GenerationForm::promptTokensText() const { return prompt_tokens_->text(); }
QString GenerationForm::negativeTokensText() const { return negative_tokens_->text(); }

void GenerationForm::updateTokenCounts() {
  token_timer_->stop();
  auto show = [this](QLabel* label, const QString& text, bool negative) {
    if (!token_counter_) {
      label->setText(negative ? QString() : token_note_);
      label->setStyleSheet("color: palette(mid);");
      label->setVisible(!label->text().isEmpty());
      return;
    }
    label->setVisible(true);
    if (negative && text.trimmed().isEmpty()) {
      label->setText("empty: Wan2.1's default negative prompt");
      label->setStyleSheet("color: palette(mid);");
      return;
    }
    const wan::PromptTokens t = token_counter_->count(text.toStdString());
    QString s = QString("%1 / %2 tokens").arg(t.tokens).arg(t.limit);
    if (t.dropped > 0)
      s += t.dropped == 1 ? QString(": the last one is cut") : QString(": the last %1 are cut").arg(t.dropped);
    label->setText(s);
    label->setStyleSheet(t.dropped > 0 ? "color: #c62828; font-weight: bold;" : "color: palette(mid);");
  };
  show(prompt_tokens_, prompt_->toPlainText(), false);
  show(negative_tokens_, negative_->toPlainText(), true);
}

QString GenerationForm::outputFolder() const { return output_->text(); }
void GenerationForm::setOutputFolder(const QString& folder) { output_->setText(folder); }

}  // namespace wan_ui
