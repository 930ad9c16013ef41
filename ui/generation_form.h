// The generation panel: prompt, negative prompt, size (common sizes or custom), frames, steps,
// sampler, shift, guidance, seed (random or fixed), output folder.
#pragma once
#include <QJsonObject>
#include <QWidget>

#include "wan/generation.h"

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QLineEdit;
class QPlainTextEdit;
class QSpinBox;

namespace wan_ui {

class GenerationForm : public QWidget {
  Q_OBJECT
 public:
  explicit GenerationForm(QWidget* parent = nullptr);

  // The request without model files and output path (the window adds those).
  wan::GenerationRequest request() const;
  void setRequest(const wan::GenerationRequest& request);
  void applySidecar(const QJsonObject& sidecar);  // a history entry's settings (seed fixed)
  QString outputFolder() const;
  void setOutputFolder(const QString& folder);

 signals:
  void changed();

 private:
  void onSizePreset(int index);
  QPlainTextEdit *prompt_, *negative_;
  QComboBox *size_, *sampler_;
  QSpinBox *width_, *height_, *frames_, *steps_;
  QDoubleSpinBox *shift_, *guidance_;
  QCheckBox* random_seed_;
  QLineEdit *seed_, *output_;
};

}  // namespace wan_ui
