#include "estimate_table_model.h"

#include <QBrush>
#include <QColor>
#include <QFont>

namespace wan_ui {

QString formatBytes(qint64 bytes) {
  const double gib = static_cast<double>(bytes) / (1ull << 30);
  if (gib >= 1.0) return QString::number(gib, 'f', gib >= 100 ? 0 : 1) + " GiB";
  return QString::number(static_cast<double>(bytes) / (1 << 20), 'f', 0) + " MiB";
}

EstimateTableModel::EstimateTableModel(QObject* parent) : QAbstractTableModel(parent) {
  models_ = {wan::wan21_t2v_1_3b(), wan::wan21_t2v_14b()};
  recompute();
}

void EstimateTableModel::setLoadedModel(const wan::ModelDims* dims) {
  beginResetModel();
  models_.resize(2);
  has_loaded_ = dims != nullptr;
  if (dims) models_.push_back(*dims);
  recompute();
  endResetModel();
}

void EstimateTableModel::setSettings(const wan::EstimateSettings& settings) {
  settings_ = settings;
  recompute();
  emit dataChanged(index(0, 0), index(rowCount() - 1, columnCount() - 1));
  emit headerDataChanged(Qt::Horizontal, 0, columnCount() - 1);
}

void EstimateTableModel::setGpuMemory(qint64 bytes) {
  gpu_memory_ = bytes;
  emit dataChanged(index(0, 0), index(rowCount() - 1, columnCount() - 1));
}

void EstimateTableModel::recompute() {
  cells_.clear();
  for (const wan::ModelDims& m : models_) {
    QVector<Cell> row;
    for (int world : kWorldSizes) {
      wan::EstimateSettings s = settings_;
      s.config = wan::layout_for_world(settings_.config, world, m.num_heads);
      Cell cell;
      const auto problems = wan::validate_dist_config(s.config, wan::DistEnvironment{-1, m.num_heads});
      cell.valid = problems.empty();
      if (!cell.valid)
        cell.problem = QString::fromStdString(problems.front().message);
      else
        cell.estimate = wan::estimate_memory(m, s);
      row.push_back(cell);
    }
    cells_.push_back(row);
  }
}

int EstimateTableModel::currentColumn() const {
  for (int c = 0; c < columnCount(); ++c)
    if (kWorldSizes[c] == settings_.config.world_size) return c;
  return -1;
}

const wan::MemoryEstimate* EstimateTableModel::estimateAt(int row, int column) const {
  if (row < 0 || row >= cells_.size() || column < 0 || column >= columnCount() || !cells_[row][column].valid)
    return nullptr;
  return &cells_[row][column].estimate;
}

int EstimateTableModel::rowCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : models_.size(); }
int EstimateTableModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : 4; }

QVariant EstimateTableModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid()) return {};
  const Cell& cell = cells_[index.row()][index.column()];
  const bool current = index.column() == currentColumn();
  const bool fits = !cell.valid || gpu_memory_ <= 0 || cell.estimate.peak <= gpu_memory_;
  switch (role) {
    case Qt::DisplayRole:
      if (!cell.valid) return QStringLiteral("—");
      return formatBytes(cell.estimate.peak) + (fits ? "" : " ⚠");
    case Qt::ToolTipRole: {
      if (!cell.valid) return cell.problem;
      const wan::MemoryEstimate& e = cell.estimate;
      QString tip =
          QString("<b>%1 on %2 %3</b><br>peak %4 (while %5)<br>")
              .arg(QString::fromStdString(models_[index.row()].name))
              .arg(kWorldSizes[index.column()])
              .arg(settings_.gpu ? "GPU(s)" : "process(es)", formatBytes(e.peak), QString::fromStdString(e.peak_phase));
      tip +=
          "weights (DiT) " + formatBytes(e.weights) + "<br>activations " + formatBytes(e.activations) +
          "<br>text encoder " + formatBytes(e.text_encoder) +
          (e.image_encoder > 0 ? "<br>start picture (CLIP / VAE encode) " + formatBytes(e.image_encoder) : QString()) +
          "<br>VAE decode " + formatBytes(e.vae_decode) + "<br>runtime " + formatBytes(e.runtime);
      if (!fits) tip += "<br><b>more than the " + formatBytes(gpu_memory_) + " each GPU here has</b>";
      return tip;
    }
    case Qt::BackgroundRole:
      if (!fits) return QBrush(QColor(255, 205, 210));
      if (current) return QBrush(QColor(200, 230, 201));
      return {};
    case Qt::FontRole:
      if (current) {
        QFont f;
        f.setBold(true);
        return f;
      }
      return {};
    case Qt::TextAlignmentRole:
      return int(Qt::AlignRight | Qt::AlignVCenter);
    case kPeakBytesRole:
      return cell.valid ? QVariant(qint64(cell.estimate.peak)) : QVariant();
    case kFitsRole:
      return fits;
    case kCurrentRole:
      return current;
    case kValidRole:
      return cell.valid;
  }
  return {};
}

QVariant EstimateTableModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (role != Qt::DisplayRole) return {};
  if (orientation == Qt::Horizontal) {
    const int n = kWorldSizes[section];
    // Short: the column fits a narrow window (the group's title says "per GPU" / "per CPU process").
    return QString("%1 %2").arg(n).arg(settings_.gpu ? (n == 1 ? "GPU" : "GPUs") : (n == 1 ? "proc" : "procs"));
  }
  const QString name = QString::fromStdString(models_[section].name);
  return has_loaded_ && section == 2 ? "Loaded: " + name : name;
}

}  // namespace wan_ui
