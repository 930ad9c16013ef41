// MainWindow's presets: the list (Auto first), applying one (Auto through the estimator's auto_layout;
// overlays over the current settings), the "modified" state, and undo.
#include <QAction>
#include <QComboBox>
#include <QLabel>
#include <QPushButton>
#include <QSignalBlocker>

#include "config_form.h"
#include "generation_form.h"
#include "main_window.h"
#include "main_window_parts.h"
#include "model_panel.h"
#include "preset_store.h"
#include "wan/error.h"
#include "wan/estimate.h"

namespace wan_ui {
using namespace main_window_detail;

QStringList MainWindow::presetNames() const {
  QStringList out = {kAuto};
  out << presets_->names();
  return out;
}

void MainWindow::refreshPresets(const QString& select) {
  const QSignalBlocker block(presets_box_);  // listing is not choosing: nothing is applied here
  presets_box_->clear();
  presets_box_->addItems(presetNames());
  for (int i = 0; i < presets_box_->count(); ++i) {
    const QString name = presets_box_->itemText(i);
    presets_box_->setItemData(
        i, name == kAuto ? QString("the fastest layout for this machine that fits") : presets_->description(name),
        Qt::ToolTipRole);
  }
  if (!select.isEmpty()) presets_box_->setCurrentText(select);
  updatePresetState();
}

QString MainWindow::presetState() const { return preset_state_->text(); }

void MainWindow::updatePresetState() {
  if (!preset_state_ || !presets_box_) return;
  const QString name = presets_box_->currentText();
  preset_description_->setText(name == kAuto ? "Auto: the fastest layout for this machine's GPUs that the memory "
                                               "estimator says fits (CFG parallel and Ulysses first, then sharding)."
                                             : presets_->description(name));
  const bool modified = !preset_applied_.isEmpty() &&
                        preset_applied_ != QString::fromStdString(wan::dist_config_to_json(config_->config()));
  preset_state_->setText(modified ? "modified: the settings differ from " + name + " (Reapply restores it)"
                                  : QString());
  preset_state_->setVisible(modified);
  const bool fixed = name == kAuto || presets_->isBuiltIn(name);
  for (QPushButton* b : {rename_preset_, remove_preset_}) {
    b->setEnabled(!fixed);
    b->setToolTip(fixed ? "Built-in presets cannot be renamed or deleted: \"Save as…\" makes a copy of your own."
                        : QString());
  }
}

bool MainWindow::applyPreset(const QString& name) {
  const wan::DistConfig before = config_->config();
  wan::DistConfig c;
  wan::EstimateSettings s;
  const wan::GenerationRequest r = generation_->request();
  s.width = r.width;
  s.height = r.height;
  s.frames = r.frames;
  s.dtype = r.dtype;
  s.fp8_weights = r.fp8_weights;
  s.gpu = !system_.gpus.empty();
  const wan::ModelDims dims = model_panel_->info() ? model_panel_->info()->dims : wan::wan21_t2v_1_3b();
  const std::int64_t gpu_memory = system_.gpus.empty() ? 0 : system_.gpus.front().memory_bytes;
  if (name == kAuto) {
    s.config = config_->config();
    const wan::AutoLayout a = wan::auto_layout(dims, s, static_cast<int>(system_.gpus.size()), gpu_memory);
    c = a.config;
    last_message_ = "Auto: " + QString::fromStdString(a.reason);
  } else {
    const bool overlay = presets_->isOverlay(name);
    try {
      // A preset without a world size (memory-efficient) changes the current layout; the others replace it.
      c = presets_->load(name, overlay ? before : wan::DistConfig{});
    } catch (const wan::Error& e) {
      last_message_ = e.what();
      status_->setText(last_message_);
      return false;
    }
    last_message_ = "Preset " + name + " applied (Edit > Undo preset brings the settings before back).";
    if (overlay && c.world_size == 1 && (c.use_fsdp || c.dit_fsdp || c.t5_fsdp)) {
      // FSDP shards across ranks: on one process it would be an invalid layout. The rest applies.
      c.use_fsdp = c.dit_fsdp = c.t5_fsdp = false;
      last_message_ = "Preset " + name + " applied without FSDP, which needs 2 or more ranks (world size is 1).";
    }
  }
  c.backend = wan::resolve_backend(c, device());  // no GPU here: CPU processes over gloo
  if (name != kAuto && model_panel_->info()) {
    // The same preset for every model; what the loaded one needs changed (its heads, A14B's two experts)
    // is changed and said.
    s.config = c;
    std::string note;
    c = wan::fit_preset_to_model(c, dims, s, gpu_memory, &note);
    if (!note.empty()) last_message_ += " " + QString::fromStdString(note);
  }
  preset_undo_.append({presets_box_->property("appliedName").toString(), before});
  if (undo_preset_action_) undo_preset_action_->setEnabled(true);
  {
    const QSignalBlocker block(presets_box_);
    presets_box_->setCurrentText(name);
  }
  presets_box_->setProperty("appliedName", name);
  config_->setConfig(c);
  preset_applied_ = QString::fromStdString(wan::dist_config_to_json(config_->config()));
  updatePresetState();
  status_->setText(last_message_);
  return true;
}

bool MainWindow::undoPreset() {
  if (preset_undo_.isEmpty()) return false;
  const PresetUndo u = preset_undo_.takeLast();
  {
    const QSignalBlocker block(presets_box_);
    presets_box_->setCurrentText(u.name.isEmpty() ? QString(kAuto) : u.name);
  }
  presets_box_->setProperty("appliedName", u.name);
  config_->setConfig(u.config);
  preset_applied_.clear();  // the settings before were not necessarily that preset's
  if (!u.name.isEmpty()) {
    try {
      if (u.name != kAuto && !presets_->isOverlay(u.name)) {
        wan::DistConfig p = presets_->load(u.name);
        p.backend = wan::resolve_backend(p, device());
        preset_applied_ = QString::fromStdString(wan::dist_config_to_json(p));
      }
    } catch (const wan::Error&) {
    }
  }
  updatePresetState();
  if (undo_preset_action_) undo_preset_action_->setEnabled(!preset_undo_.isEmpty());
  last_message_ = "The distributed settings before the preset are back.";
  status_->setText(last_message_);
  return true;
}

}  // namespace wan_ui
