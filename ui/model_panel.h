// The model panel: an official or ComfyUI folder, or the three ComfyUI files, or the demo model; shows
// what the files' headers say (variant, size, heads, dtype on disk) and what this machine has.
#pragma once
#include <QWidget>
#include <optional>

#include "wan/model_info.h"
#include "wan/system_info.h"

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
  QString lastError() const { return last_error_; }

 signals:
  void modelChanged();  // info() changed (possibly to none)

 private:
  wan::ModelFiles files_;
  std::optional<wan::ModelInfo> info_;
  QString last_error_;
  QLineEdit* path_;
  QLabel* info_label_;
  LoraList* lora_list_;
};

}  // namespace wan_ui
