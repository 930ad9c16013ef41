#include "history_model.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonDocument>

#include "video_reader.h"
#include "wan/error.h"

namespace wan_ui {

HistoryModel::HistoryModel(QObject* parent) : QAbstractListModel(parent) {}

void HistoryModel::setFolder(const QString& folder) {
  folder_ = folder;
  refresh();
}

void HistoryModel::refresh() {
  beginResetModel();
  items_.clear();
  for (const QFileInfo& f : QDir(folder_).entryInfoList({"*.json"}, QDir::Files)) {
    QFile file(f.absoluteFilePath());
    if (!file.open(QIODevice::ReadOnly)) continue;
    const QByteArray text = file.readAll();
    const QJsonObject j = QJsonDocument::fromJson(text).object();
    const QString video = j.value("outputs").toObject().value("video").toString();
    if (video.isEmpty() || !QFileInfo::exists(video)) continue;  // not a sidecar, or its video is gone
    Item item;
    try {
      item.job = wan::job_from_sidecar(text.toStdString());  // the request as it ran (the job codec)
    } catch (const wan::Error&) {
      continue;  // not a sidecar of ours
    }
    item.video = video;
    item.sidecar = f.absoluteFilePath();
    item.prompt = QString::fromStdString(item.job.request.prompt);
    // The video's own size (an image-to-video request holds the area asked for).
    const QJsonObject shape = j.contains("video") ? j.value("video").toObject() : j;
    item.size = QSize(shape.value("width").toInt(), shape.value("height").toInt());
    item.created = QDateTime::fromString(j.value("created").toString(), Qt::ISODate);
    if (!item.created.isValid()) item.created = f.lastModified();
    item.settings = j;
    items_.push_back(item);
  }
  std::sort(items_.begin(), items_.end(), [](const Item& a, const Item& b) { return a.created > b.created; });
  endResetModel();
}

QJsonObject HistoryModel::settingsAt(int row) const {
  return row >= 0 && row < items_.size() ? items_[row].settings : QJsonObject();
}
QString HistoryModel::videoPathAt(int row) const {
  return row >= 0 && row < items_.size() ? items_[row].video : QString();
}

QString HistoryModel::remove(int row, bool to_trash) {
  if (row < 0 || row >= items_.size()) return "No such history entry.";
  const Item item = items_[row];
  auto discard = [to_trash](const QString& path) { return to_trash ? QFile::moveToTrash(path) : QFile::remove(path); };
  const QString verb = to_trash ? "Cannot move %1 to the trash." : "Cannot delete %1.";
  if (QFile::exists(item.video) && !discard(item.video)) return verb.arg(item.video);
  if (!discard(item.sidecar)) return verb.arg(item.sidecar);
  beginRemoveRows({}, row, row);
  items_.removeAt(row);
  endRemoveRows();
  return {};
}

int HistoryModel::rowCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : items_.size(); }

QVariant HistoryModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() >= items_.size()) return {};
  const Item& it = items_[index.row()];
  switch (role) {
    case Qt::DisplayRole: {
      const wan::GenerationRequest& r = it.job.request;
      return QString("%1\n%2x%3, %4 frames, %5 steps, seed %6 · %7")
          .arg(it.prompt.left(80))
          .arg(it.size.width())
          .arg(it.size.height())
          .arg(r.frames)
          .arg(r.steps.value_or(0))
          .arg(static_cast<qint64>(r.seed))
          .arg(it.created.toLocalTime().toString("yyyy-MM-dd hh:mm"));
    }
    case Qt::ToolTipRole:
      return it.prompt + "\n" + it.video;
    case Qt::DecorationRole:
      if (!it.thumbnail_tried) {
        it.thumbnail_tried = true;
        const DecodedVideo v = readVideo(it.video, 1);
        if (!v.frames.isEmpty())
          it.thumbnail = v.frames.front().scaled(96, 96, Qt::KeepAspectRatio, Qt::SmoothTransformation);
      }
      return it.thumbnail;
    case kVideoPathRole:
      return it.video;
    case kSidecarPathRole:
      return it.sidecar;
    case kPromptRole:
      return it.prompt;
    case kSettingsRole:
      return it.settings;
    case kCreatedRole:
      return it.created;
  }
  return {};
}

}  // namespace wan_ui
