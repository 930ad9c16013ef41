#include "lora_list.h"

#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPushButton>
#include <QTableWidget>
#include <QVBoxLayout>

namespace wan_ui {

LoraList::LoraList(QWidget* parent) : QWidget(parent) {
  auto* l = new QVBoxLayout(this);
  l->setContentsMargins(0, 0, 0, 0);
  auto* title = new QLabel("LoRAs (merged into the DiT, in this order)");
  table_ = new QTableWidget(0, 3);
  table_->setObjectName("loraTable");
  table_->setHorizontalHeaderLabels({"File", "Strength", "Expert"});
  table_->horizontalHeader()->setSectionResizeMode(0, QHeaderView::Stretch);
  table_->horizontalHeader()->setSectionResizeMode(1, QHeaderView::ResizeToContents);
  table_->horizontalHeader()->setSectionResizeMode(2, QHeaderView::ResizeToContents);
  table_->setColumnHidden(2, true);
  table_->verticalHeader()->hide();
  table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table_->setMaximumHeight(84);  // three rows; the left column stays short enough for 1280x720
  auto* add_button = new QPushButton("Add LoRA…");
  add_button->setObjectName("addLora");
  add_button->setToolTip("A LoRA file (.safetensors) for this DiT: ComfyUI, kohya, PEFT or diffusers layout.");
  auto* remove_button = new QPushButton("Remove");
  remove_button->setObjectName("removeLora");
  auto* buttons = new QHBoxLayout;
  buttons->addWidget(add_button);
  buttons->addWidget(remove_button);
  buttons->addStretch(1);
  l->addWidget(title);
  l->addWidget(table_);
  l->addLayout(buttons);
  connect(add_button, &QPushButton::clicked, this, [this] {
    const QString file =
        QFileDialog::getOpenFileName(this, "LoRA (loras/…)", {}, "LoRA (*.safetensors);;All files (*)");
    if (!file.isEmpty()) add(wan::LoraFile{file.toStdString(), 1.0});
  });
  connect(remove_button, &QPushButton::clicked, this, [this] {
    const int row = table_->currentRow();
    if (row < 0) return;
    table_->removeRow(row);
    emit changed();
  });
}

void LoraList::add(const wan::LoraFile& lora) {
  const int row = table_->rowCount();
  table_->insertRow(row);
  const QString path = QString::fromStdString(lora.path);
  auto* item = new QTableWidgetItem(QFileInfo(path).fileName());
  item->setToolTip(path);
  item->setData(Qt::UserRole, path);
  table_->setItem(row, 0, item);
  auto* strength = new QDoubleSpinBox;
  strength->setRange(-100, 100);
  strength->setDecimals(2);
  strength->setSingleStep(0.05);
  strength->setValue(lora.strength);
  strength->setToolTip("1: as trained; 0: off; negative: the opposite");
  connect(strength, qOverload<double>(&QDoubleSpinBox::valueChanged), this, [this] { emit changed(); });
  table_->setCellWidget(row, 1, strength);
  auto* expert = new QComboBox;
  expert->setObjectName("loraExpert");
  for (wan::LoraExpert e : {wan::LoraExpert::kBoth, wan::LoraExpert::kHighNoise, wan::LoraExpert::kLowNoise})
    expert->addItem(e == wan::LoraExpert::kBoth        ? "Both"
                    : e == wan::LoraExpert::kHighNoise ? "High noise"
                                                       : "Low noise",
                    static_cast<int>(e));
  expert->setCurrentIndex(expert->findData(static_cast<int>(lora.expert)));
  expert->setToolTip(
      "Wan2.2 A14B: the expert this LoRA is merged into (LoRAs made for A14B come in *_high_noise* and "
      "*_low_noise* halves)");
  connect(expert, qOverload<int>(&QComboBox::currentIndexChanged), this, [this] { emit changed(); });
  table_->setCellWidget(row, 2, expert);
  emit changed();
}

void LoraList::setMixtureOfExperts(bool moe) {
  if (moe == moe_) return;
  moe_ = moe;
  table_->setColumnHidden(2, !moe);
  emit changed();
}

std::vector<wan::LoraFile> LoraList::loras() const {
  std::vector<wan::LoraFile> out;
  for (int row = 0; row < table_->rowCount(); ++row) {
    const auto* strength = qobject_cast<const QDoubleSpinBox*>(table_->cellWidget(row, 1));
    const auto* expert = qobject_cast<const QComboBox*>(table_->cellWidget(row, 2));
    out.push_back(wan::LoraFile{
        table_->item(row, 0)->data(Qt::UserRole).toString().toStdString(), strength ? strength->value() : 1.0,
        moe_ && expert ? static_cast<wan::LoraExpert>(expert->currentData().toInt()) : wan::LoraExpert::kBoth});
  }
  return out;
}

void LoraList::setLoras(const std::vector<wan::LoraFile>& loras) {
  table_->setRowCount(0);
  for (const wan::LoraFile& l : loras) add(l);
  emit changed();
}

}  // namespace wan_ui
