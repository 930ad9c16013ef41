// The generation panel: start picture (image-to-video models), prompt, negative prompt, size (common
// sizes or custom; the largest area for image-to-video), frames, steps, sampler, shift, guidance, seed
// (random or fixed), output folder. Steps, shift and guidance start at "default": the request then
// leaves them unset and the engine resolves the task's value (wan::resolve_defaults), which the box
// shows, e.g. "default (40)" for image-to-video.
#pragma once
#include <QSize>
#include <QWidget>
#include <memory>

#include "wan/generation.h"
#include "wan/prompt_tokens.h"

class QCheckBox;
class QLabel;
class QComboBox;
class QDoubleSpinBox;
class QLineEdit;
class QPlainTextEdit;
class QPushButton;
class QSpinBox;
class QTimer;

namespace wan_ui {

class GenerationForm : public QWidget {
  Q_OBJECT
 public:
  explicit GenerationForm(QWidget* parent = nullptr);

  // The request without model files and output path (the window adds those).
  wan::GenerationRequest request() const;
  void setRequest(const wan::GenerationRequest& request);
  QString outputFolder() const;
  void setOutputFolder(const QString& folder);
  // The loaded model takes a start picture (I2V): the picture row is enabled and required, and the
  // size is the largest area. Text-to-video models: the row is disabled and ignored.
  void setImageToVideo(bool i2v);
  // Wan2.2 TI2V-5B: the start picture is optional (with one, image-to-video; the size is then the
  // largest area), the defaults are TI2V's in both modes and sizes are multiples of 32.
  void setTextImageToVideo(bool ti2v);
  bool imageToVideo() const { return i2v_; }
  // The loaded model is Wan2.2 A14B (two experts): the high-noise expert's guidance and the boundary
  // are shown and go into the request (guidance_high, boundary); the guidance box is the low-noise one's.
  void setMixtureOfExperts(bool moe);
  // File names of the loaded DiT and LoRAs that look step-distilled (wan::looks_step_distilled): while
  // the sampler is not "4-step (distilled)", a line under the sampler suggests it. Empty: no line.
  void setDistilledFiles(const QStringList& names);
  QString distillHint() const;  // the line's text when shown, else empty
  QString startImage() const;
  // The video's size: width x height, or for image-to-video with a readable picture the size that
  // picture gives within that area (what the memory estimate is for).
  QSize videoSize() const;
  void setStartImage(const QString& path);
  // The token counters under the prompt and negative boxes ("37 / 512 tokens"; over the limit, in red,
  // how many are cut). No counter: `note` is shown instead ("" shows nothing).
  void setTokenCounter(std::shared_ptr<const wan::PromptTokenCounter> counter, const QString& note = {});
  QString promptTokensText() const;
  QString negativeTokensText() const;
  // The nearest value of the engine's valid ranges (what the boxes snap a typed value to).
  static int snapSide(int v);
  static int snapFrames(int v);
  static int snapSteps(int v);  // 0: the task's default

 signals:
  void changed();
  // The output folder was typed (editing finished) or picked: the history shows that folder.
  void outputFolderChanged(const QString& folder);

 private:
  void onSizePreset(int index);
  void showTaskDefaults();  // the "default (N)" texts for the current task, size and sampler
  void updateDistillHint();
  void updateImageRow();  // the picture row and size label for i2v_ / ti2v_
  void updateTokenCounts();
  QPlainTextEdit *prompt_, *negative_;
  QComboBox *size_, *sampler_;
  QSpinBox *width_, *height_, *frames_, *steps_;
  QDoubleSpinBox *shift_, *guidance_, *guidance_high_, *boundary_;
  QWidget* experts_row_;  // guidance_high_ and boundary_, shown for Wan2.2 A14B
  QLabel* distill_hint_ = nullptr;
  QComboBox* cache_ = nullptr;  // Off | TeaCache | MagCache (--cache)
  QDoubleSpinBox* cache_threshold_ = nullptr;
  wan::StepCacheSettings restored_cache_;  // a restored request's warm-up and K (no field edits them)
  QStringList distilled_files_;
  std::vector<int> denoising_step_list_;  // a restored request's list (no field edits it); kept while it fits
  bool moe_ = false;
  QCheckBox* random_seed_;
  QLineEdit *seed_, *output_, *image_;
  QLabel *image_label_, *size_label_, *image_preview_, *prompt_tokens_, *negative_tokens_;
  QTimer* token_timer_;
  std::shared_ptr<const wan::PromptTokenCounter> token_counter_;
  QString token_note_;
  QPushButton* pick_image_;
  bool i2v_ = false;
  bool ti2v_ = false;
  QSize image_size_;  // of the start picture; invalid when none or unreadable
};

}  // namespace wan_ui
