#include "model_panel.h"

#include <QCheckBox>
#include <QFileDialog>
#include <QGridLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QVBoxLayout>

#include "estimate_table_model.h"
#include "lora_list.h"
#include "wan/error.h"

namespace wan_ui {

ModelPanel::ModelPanel(const wan::SystemInfo& system, QWidget* parent) : QWidget(parent) {
  auto* l = new QVBoxLayout(this);
  path_ = new QLineEdit;
  path_->setObjectName("modelPath");
  path_->setPlaceholderText("official Wan2.1 folder or ComfyUI models folder");
  auto* browse = new QPushButton("Folder…");
  auto* files = new QPushButton("ComfyUI files…");
  files->setToolTip("Pick the diffusion model, the text encoder and the VAE files one by one.");
  auto* demo = new QPushButton("Demo model");
  demo->setToolTip("The built-in small model with random weights: runs anywhere, makes structured noise.");
  auto* demo_i2v = new QPushButton("Demo image-to-video");
  demo_i2v->setObjectName("demoI2vButton");
  demo_i2v->setToolTip(
      "The built-in small image-to-video model (random weights, with a CLIP tower): needs a start picture.");
  l->addWidget(path_);
  auto* row = new QGridLayout;  // two by two: the left column stays narrow enough for 1280x720
  row->addWidget(browse, 0, 0);
  row->addWidget(files, 0, 1);
  row->addWidget(demo, 1, 0);
  row->addWidget(demo_i2v, 1, 1);
  l->addLayout(row);
  info_label_ = new QLabel("No model chosen.");
  info_label_->setObjectName("modelInfo");
  info_label_->setWordWrap(true);
  l->addWidget(info_label_);
  auto* machine = new QLabel;
  machine->setObjectName("machineInfo");
  machine->setWordWrap(true);
  if (system.gpus.empty())
    machine->setText(
        "<b>No GPU found</b> on this machine: runs use CPU processes (gloo). The demo model is the practical choice.");
  else
    machine->setText(
        QString("%1 GPU(s): %2, %3 each")
            .arg(system.gpus.size())
            .arg(QString::fromStdString(system.gpus.front().name), formatBytes(system.gpus.front().memory_bytes)));
  l->addWidget(machine);
  lora_list_ = new LoraList;
  l->addWidget(lora_list_);
  connect(lora_list_, &LoraList::changed, this, &ModelPanel::lorasChanged);
  lora_allow_partial_ = new QCheckBox("Apply LoRAs that match only in part");
  lora_allow_partial_->setObjectName("loraAllowPartialCheck");
  lora_allow_partial_->setToolTip(
      "A LoRA some of whose entries name no weight of this DiT is refused unless this is on (--lora-allow-partial);\n"
      "on, the entries that match are applied and the run's log says how many were left out.");
  keep_fp8_ = new QCheckBox("Keep fp8 weights in fp8 (half the weight memory)");
  keep_fp8_->setObjectName("keepFp8Check");
  keep_fp8_->setToolTip(
      "For fp8 and fp8_scaled files (--fp8-weights keep): the float8 weights stay in memory as 1 byte each and\n"
      "every layer dequantizes its weight just before it runs. The video is the same as with the weights\n"
      "dequantized at load; a little slower. Disabled when the model's files hold no float8 weights.");
  keep_fp8_->setEnabled(false);
  l->addWidget(lora_allow_partial_);
  l->addWidget(keep_fp8_);
  for (QCheckBox* box : {lora_allow_partial_, keep_fp8_})
    connect(box, &QCheckBox::toggled, this, &ModelPanel::loadOptionsChanged);

  connect(browse, &QPushButton::clicked, this, [this] {
    const QString d = QFileDialog::getExistingDirectory(this, "Model folder", QString::fromStdString(files_.model_dir));
    if (!d.isEmpty()) loadFolder(d);
  });
  connect(files, &QPushButton::clicked, this, [this] {
    const QString filter = "Weights (*.safetensors *.gguf *.pth *.pt *.index.json);;All files (*)";
    wan::ModelFiles f;
    f.dit = QFileDialog::getOpenFileName(this, "Diffusion model (diffusion_models/…)", {}, filter).toStdString();
    if (f.dit.empty()) return;
    f.t5 = QFileDialog::getOpenFileName(this, "Text encoder (text_encoders/umt5…)", {}, filter).toStdString();
    if (f.t5.empty()) return;
    f.vae = QFileDialog::getOpenFileName(this, "VAE (vae/…)", {}, filter).toStdString();
    if (f.vae.empty()) return;
    try {
      if (wan::inspect_model(f).dims.i2v)  // image-to-video also needs the CLIP vision tower
        f.clip = QFileDialog::getOpenFileName(this, "CLIP vision (clip_vision/…)", {}, filter).toStdString();
    } catch (const wan::Error&) {
      // load() shows the problem
    }
    load(f);
  });
  connect(demo, &QPushButton::clicked, this, [this] { loadFolder(QString::fromStdString(wan::demo_model_dir())); });
  connect(demo_i2v, &QPushButton::clicked, this,
          [this] { loadFolder(QString::fromStdString(wan::demo_model_dir(true))); });
  connect(path_, &QLineEdit::editingFinished, this, [this] {
    if (path_->isModified()) loadFolder(path_->text());
  });
}

bool ModelPanel::loadFolder(const QString& folder) {
  wan::ModelFiles files;
  files.model_dir = folder.toStdString();
  return load(files);
}

bool ModelPanel::load(const wan::ModelFiles& files) {
  files_ = files;
  path_->setText(!files.model_dir.empty() ? QString::fromStdString(files.model_dir)
                                          : QString::fromStdString(files.dit + " | " + files.t5 + " | " + files.vae +
                                                                   (files.clip.empty() ? "" : " | " + files.clip)));
  path_->setModified(false);
  try {
    info_ = wan::inspect_model(files);  // headers only: milliseconds
  } catch (const wan::Error& e) {
    info_.reset();
    keep_fp8_->setEnabled(false);
    lora_list_->setMixtureOfExperts(false);
    last_error_ = e.what();
    info_label_->setText("<span style='color:#c62828'>" + last_error_.toHtmlEscaped() + "</span>");
    emit modelChanged();
    return false;
  }
  last_error_.clear();
  const wan::ModelInfo& m = *info_;
  keep_fp8_->setEnabled(m.dims.dit_float8_params + m.dims.t5_float8_params > 0);
  lora_list_->setMixtureOfExperts(m.moe);
  info_label_->setText(
      QString("<b>%1</b> (%2 layout) · DiT %3 on disk, %4 params · %5 heads · text encoder %6, VAE %7")
          .arg(QString::fromStdString(m.label), QString::fromStdString(m.layout), QString::fromStdString(m.dit_dtype))
          .arg(QString::number(m.dims.dit_params / 1e6, 'f', 1) + " M")
          .arg(m.dims.num_heads)
          .arg(formatBytes(m.t5_file_bytes), formatBytes(m.vae_file_bytes)) +
      (m.kind == "t2v" ? QString()
       : !m.clip_error.empty()
           ? "<br><span style='color:#c62828'>" + QString::fromStdString(m.clip_error).toHtmlEscaped() + "</span>"
           : QString(" · CLIP vision %1 (%2 wide, %3 blocks)")
                 .arg(formatBytes(m.clip_file_bytes))
                 .arg(m.dims.clip_dim)
                 .arg(m.dims.clip_layers)));
  emit modelChanged();
  return true;
}

std::vector<wan::LoraFile> ModelPanel::loras() const { return lora_list_->loras(); }

void ModelPanel::setLoras(const std::vector<wan::LoraFile>& loras) { lora_list_->setLoras(loras); }

wan::Fp8Weights ModelPanel::fp8Weights() const {
  return keep_fp8_->isEnabled() && keep_fp8_->isChecked() ? wan::Fp8Weights::kKeep : wan::Fp8Weights::kDequantize;
}

bool ModelPanel::keepFp8Checked() const { return keep_fp8_->isChecked(); }

void ModelPanel::setFp8Weights(wan::Fp8Weights mode) { keep_fp8_->setChecked(mode == wan::Fp8Weights::kKeep); }

bool ModelPanel::loraAllowPartial() const { return lora_allow_partial_->isChecked(); }

void ModelPanel::setLoraAllowPartial(bool allow) { lora_allow_partial_->setChecked(allow); }

}  // namespace wan_ui
