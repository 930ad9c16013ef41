#include "lora_list.h"

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
  table_ = new QTableWidget(0, 2);
  table_->setObjectName("loraTable");
  table_->setHorizontalHeaderLabels({"File", "Strength"});
  table_->horizontalHeader()->setSectionResizeMode(0, QHeaderView::Stretch);
  table_->horizontalHeader()->setSectionResizeMode(1, QHeaderView::ResizeToContents);
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
  emit changed();
}

std::vector<wan::LoraFile> LoraList::loras() const {
  std::vector<wan::LoraFile> out;
  for (int row = 0; row < table_->rowCount(); ++row) {
    const auto* strength = qobject_cast<const QDoubleSpinBox*>(table_->cellWidget(row, 1));
    out.push_back(wan::LoraFile{table_->item(row, 0)->data(Qt::UserRole).toString().toStdString(),
                                strength ? strength->value() : 1.0});
  }
  return out;
}

void LoraList::setLoras(const std::vector<wan::LoraFile>& loras) {
  table_->setRowCount(0);
  for (const wan::LoraFile& l : loras) add(l);
  emit changed();
}

}  // namespace wan_ui
