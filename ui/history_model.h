// Every generation in the output folder, newest first: thumbnail, prompt and settings, read from the
// JSON sidecars the engine writes beside each video (through the job codec, wan::job_from_sidecar).
// Delete moves the video and its sidecar to the desktop's trash (or, asked for, deletes them).
#pragma once
#include <QAbstractListModel>
#include <QDateTime>
#include <QImage>
#include <QJsonObject>
#include <QSize>
#include <QVector>

#include "wan/job.h"

namespace wan_ui {

class HistoryModel : public QAbstractListModel {
  Q_OBJECT
 public:
  enum Role { kVideoPathRole = Qt::UserRole + 1, kSidecarPathRole, kPromptRole, kSettingsRole, kCreatedRole };

  explicit HistoryModel(QObject* parent = nullptr);

  void setFolder(const QString& folder);  // rescans
  QString folder() const { return folder_; }
  void refresh();

  QJsonObject settingsAt(int row) const;  // the whole sidecar
  QString videoPathAt(int row) const;
  // Moves the entry's video and sidecar to the trash (QFile::moveToTrash), or deletes them for good when
  // `to_trash` is false. Returns an error message, empty on success; on failure the entry stays.
  QString remove(int row, bool to_trash = true);

  int rowCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role) const override;

 private:
  struct Item {
    QString video, sidecar, prompt;
    wan::Job job;  // what the sidecar records (wan::job_from_sidecar)
    QSize size;    // of the video
    QDateTime created;
    QJsonObject settings;
    mutable QImage thumbnail;
    mutable bool thumbnail_tried = false;
  };
  QString folder_;
  QVector<Item> items_;
};

}  // namespace wan_ui
