// The model panel: an official or ComfyUI folder, or the three ComfyUI files, or the demo model; shows
// what the files' headers say (variant, size, heads, dtype on disk) and what this machine has.
#pragma once
#include <QWidget>
#include <optional>

#include "wan/model_info.h"
#include "wan/system_info.h"

class QCheckBox;
class QLabel;
class QLineEdit;

namespace wan_ui {

class LoraList;

class ModelPanel : public QWidget {
  Q_OBJECT
 public:
  explicit ModelPanel(const wan::SystemInfo& system, QWidget* parent = nullptr);

  bool load(const wan::ModelFiles& files);  // false: the error is shown in the panel and in lastError()
  bool loadFolder(const QString& folder);
  const wan::ModelFiles& files() const { return files_; }
  const std::optional<wan::ModelInfo>& info() const { return info_; }
  bool hasFiles() const { return !files_.model_dir.empty() || !files_.dit.empty(); }
  // The LoRAs of the LoRA list (not part of files(): choosing a model keeps them).
  std::vector<wan::LoraFile> loras() const;
  void setLoras(const std::vector<wan::LoraFile>& loras);
  // How the weights load (the request's fp8_weights and model.lora_allow_partial): two check boxes under
  // the LoRA list. "Keep fp8 weights" applies only when the loaded model's DiT or text encoder stores
  // float8 weights (it is disabled otherwise, and fp8Weights() is then kDequantize).
  wan::Fp8Weights fp8Weights() const;
  void setFp8Weights(wan::Fp8Weights mode);
  bool keepFp8Checked() const;  // the box itself, enabled or not (what the saved settings remember)
  bool loraAllowPartial() const;
  void setLoraAllowPartial(bool allow);
  QString lastError() const { return last_error_; }

 signals:
  void modelChanged();        // info() changed (possibly to none)
  void loadOptionsChanged();  // fp8Weights() or loraAllowPartial() changed
  void lorasChanged();        // the LoRA list changed (files, strengths or experts)

 private:
  wan::ModelFiles files_;
  std::optional<wan::ModelInfo> info_;
  QString last_error_;
  QLineEdit* path_;
  QLabel* info_label_;
  LoraList* lora_list_;
  QCheckBox *keep_fp8_, *lora_allow_partial_;
};

}  // namespace wan_ui
