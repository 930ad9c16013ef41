// The model panel's LoRA list: files with a strength each (ComfyUI's strength_model), added with a file
// dialog, removed with a button; the run merges them into the DiT in this order (weights/lora.h). The
// list travels with the request (request.model.loras), the sidecar and the history's Re-run.
#pragma once
#include <QWidget>
#include <vector>

#include "wan/generation.h"

class QTableWidget;

namespace wan_ui {

class LoraList : public QWidget {
  Q_OBJECT
 public:
  explicit LoraList(QWidget* parent = nullptr);

  // The list as the request takes it (strengths -100 to 100, two decimals).
  std::vector<wan::LoraFile> loras() const;
  void setLoras(const std::vector<wan::LoraFile>& loras);
  // Appends one (what "Add LoRA…" does after its dialog).
  void add(const wan::LoraFile& lora);

 signals:
  void changed();

 private:
  QTableWidget* table_;
};

}  // namespace wan_ui
