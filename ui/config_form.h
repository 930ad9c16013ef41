// The distributed settings form: every field of the config, validated live with the message next to
// the field it belongs to (the engine's validate_dist_config rules and wording).
#pragma once
#include <QMap>
#include <QWidget>

#include "wan/dist_config.h"

class QCheckBox;
class QComboBox;
class QFormLayout;
class QLabel;
class QSpinBox;

namespace wan_ui {

class ConfigForm : public QWidget {
  Q_OBJECT
 public:
  explicit ConfigForm(QWidget* parent = nullptr);

  wan::DistConfig config() const;
  void setConfig(const wan::DistConfig& config);  // emits changed() once
  // What the machine and model offer: GPUs found (-1 unknown) and the DiT's heads (0 unknown).
  void setEnvironment(const wan::DistEnvironment& env);

  std::vector<wan::ConfigProblem> problems() const { return problems_; }
  bool isValid() const { return problems_.empty(); }
  QString messageFor(const QString& field) const;  // the text shown next to a field ("" when fine)

 signals:
  void changed();

 private:
  void onEdited();
  void revalidate();
  QLabel* addMessage(const QString& field);

  QFormLayout* form_;
  QSpinBox *world_size_, *ulysses_, *ring_, *hang_timeout_, *collective_timeout_;
  QComboBox *backend_, *sharding_, *param_dtype_, *reduce_dtype_, *buffer_dtype_, *attention_;
  QCheckBox *dit_fsdp_, *t5_fsdp_, *context_parallel_, *use_usp_, *cfg_parallel_, *t5_cpu_, *sync_states_;
  QCheckBox* idle_expert_;  // idle_expert_on_host (Wan2.2 A14B)
  QMap<QString, QLabel*> messages_;
  wan::DistEnvironment env_;
  std::vector<wan::ConfigProblem> problems_;
  bool loading_ = false;
  wan::DistConfig base_;  // the last config set: fields without a widget keep their values
};

}  // namespace wan_ui
