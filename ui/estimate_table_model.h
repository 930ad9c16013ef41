// The memory estimator table: rows = models (1.3B, 14B, the loaded one), columns = 1/2/4/8 GPUs;
// a cell is the estimated peak per GPU (rank 0) under the current settings, its tooltip the split
// into weights / activations / text encoder / VAE decode. The current world size is highlighted and
// cells over the detected GPU memory are marked.
#pragma once
#include <QAbstractTableModel>
#include <QVector>

#include "wan/estimate.h"

namespace wan_ui {

class EstimateTableModel : public QAbstractTableModel {
  Q_OBJECT
 public:
  enum Role { kPeakBytesRole = Qt::UserRole + 1, kFitsRole, kCurrentRole, kValidRole };
  static constexpr int kWorldSizes[] = {1, 2, 4, 8};

  explicit EstimateTableModel(QObject* parent = nullptr);

  void setLoadedModel(const wan::ModelDims* dims);          // nullptr: no loaded row
  void setSettings(const wan::EstimateSettings& settings);  // the current config, size, dtype, device
  void setGpuMemory(qint64 bytes);                          // 0: unknown (nothing marked)

  const wan::MemoryEstimate* estimateAt(int row, int column) const;
  int currentColumn() const;

  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role) const override;

 private:
  struct Cell {
    bool valid = false;
    QString problem;
    wan::MemoryEstimate estimate;
  };
  void recompute();

  QVector<wan::ModelDims> models_;
  bool has_loaded_ = false;
  wan::EstimateSettings settings_;
  qint64 gpu_memory_ = 0;
  QVector<QVector<Cell>> cells_;
};

QString formatBytes(qint64 bytes);

}  // namespace wan_ui
