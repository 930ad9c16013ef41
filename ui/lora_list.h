// The model panel's LoRA list: files with a strength each (ComfyUI's strength_model), added with a file
// dialog, removed with a button; the run merges them into the DiT in this order (weights/lora.h). The
// list travels with the request (request.model.loras), the sidecar and the history's Re-run. For a Wan2.2
// A14B model an Expert column picks the expert each LoRA is merged into (both, high noise, low noise:
// LoraExpert); for other models the column is hidden and every LoRA goes to the one DiT.
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
  // Shows the Expert column (a Wan2.2 A14B model is loaded). Hidden, loras() reports every LoRA for both
  // experts, so a list set up for A14B runs on a one-DiT model as the rows show it.
  void setMixtureOfExperts(bool moe);

 signals:
  void changed();

 private:
  QTableWidget* table_;
  bool moe_ = false;
};

}  // namespace wan_ui
