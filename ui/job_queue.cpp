#include "job_queue.h"

#include <QColor>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QSaveFile>

#include "wan/error.h"

namespace wan_ui {
namespace {

constexpr const char* kFormat = "wan-studio-queue/1";
const char* const kStates[] = {"pending", "running", "done", "failed", "cancelled"};

}  // namespace

JobQueueModel::JobQueueModel(QObject* parent) : QAbstractListModel(parent) {}

QString JobQueueModel::stateName(State state) { return kStates[static_cast<int>(state)]; }

int JobQueueModel::rowCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : size(); }

QVariant JobQueueModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() >= size()) return {};
  const Entry& e = at(index.row());
  const wan::GenerationRequest& r = e.job.request;
  if (role == Qt::DisplayRole) {
    QString prompt = QString::fromStdString(r.prompt);
    if (prompt.size() > 60) prompt = prompt.left(57) + "…";
    return QString("%1. %2 · %3x%4, %5 frames, %6 · %7 rank(s)\n\"%8\"%9")
        .arg(index.row() + 1)
        .arg(stateName(e.state))
        .arg(r.width)
        .arg(r.height)
        .arg(r.frames)
        .arg(r.steps ? QString("%1 steps").arg(*r.steps) : QString("default steps"))
        .arg(e.job.config.world_size)
        .arg(prompt)
        .arg(e.message.isEmpty() ? QString() : "\n" + e.message);
  }
  if (role == Qt::ToolTipRole) return QString::fromStdString(wan::job_to_json(e.job));
  if (role == Qt::ForegroundRole && e.state == State::kFailed) return QColor(0xc6, 0x28, 0x28);
  if (role == Qt::ForegroundRole && e.state == State::kDone) return QColor(0x2e, 0x7d, 0x32);
  return {};
}

void JobQueueModel::add(const wan::Job& job, const QString& folder) {
  beginInsertRows({}, size(), size());
  entries_.push_back({job, folder, State::kPending, {}});
  endInsertRows();
  save();
}

bool JobQueueModel::move(int row, int delta) {
  const int to = row + delta;
  if (row < 0 || row >= size() || to < 0 || to >= size() || delta == 0) return false;
  beginMoveRows({}, row, row, {}, delta > 0 ? to + 1 : to);
  std::swap(entries_[static_cast<std::size_t>(row)], entries_[static_cast<std::size_t>(to)]);
  endMoveRows();
  emit dataChanged(index(std::min(row, to)), index(std::max(row, to)));  // the numbers
  save();
  return true;
}

bool JobQueueModel::remove(int row) {
  if (row < 0 || row >= size() || at(row).state == State::kRunning) return false;
  beginRemoveRows({}, row, row);
  entries_.erase(entries_.begin() + row);
  endRemoveRows();
  if (size() > row) emit dataChanged(index(row), index(size() - 1));
  save();
  return true;
}

void JobQueueModel::setState(int row, State state, const QString& message) {
  if (row < 0 || row >= size()) return;
  entries_[static_cast<std::size_t>(row)].state = state;
  entries_[static_cast<std::size_t>(row)].message = message;
  emit dataChanged(index(row), index(row));
  save();
}

int JobQueueModel::nextPending() const {
  for (int i = 0; i < size(); ++i)
    if (at(i).state == State::kPending) return i;
  return -1;
}

int JobQueueModel::count(State state) const {
  int n = 0;
  for (const Entry& e : entries_) n += e.state == state;
  return n;
}

void JobQueueModel::save() const {
  if (file_.isEmpty()) return;
  QJsonArray jobs;
  for (const Entry& e : entries_) {
    QJsonObject o;
    o["job"] = QJsonDocument::fromJson(QByteArray::fromStdString(wan::job_to_json(e.job))).object();
    o["folder"] = e.folder;
    o["state"] = stateName(e.state);
    o["message"] = e.message;
    jobs.append(o);
  }
  QJsonObject root;
  root["format"] = kFormat;
  root["jobs"] = jobs;
  QDir().mkpath(QFileInfo(file_).absolutePath());
  QSaveFile f(file_);
  if (f.open(QIODevice::WriteOnly)) {
    f.write(QJsonDocument(root).toJson());
    f.commit();
  }
}

QString JobQueueModel::load() {
  beginResetModel();
  entries_.clear();
  QString error;
  QFile f(file_);
  if (!file_.isEmpty() && f.exists()) {
    if (!f.open(QIODevice::ReadOnly)) {
      error = "Cannot read the queue " + file_ + ": " + f.errorString();
    } else {
      const QJsonObject root = QJsonDocument::fromJson(f.readAll()).object();
      if (root.value("format").toString() != kFormat)
        error = "The queue file " + file_ + " is not a " + kFormat + " file.";
      for (const QJsonValue& v : root.value("jobs").toArray()) {
        const QJsonObject o = v.toObject();
        Entry e;
        try {
          e.job = wan::job_from_json(QJsonDocument(o.value("job").toObject()).toJson().toStdString());
        } catch (const wan::Error& x) {
          error = QString("A queued job could not be read: %1").arg(x.what());
          continue;
        }
        e.folder = o.value("folder").toString();
        const QString state = o.value("state").toString();
        for (int s = 0; s < 5; ++s)
          if (state == kStates[s]) e.state = static_cast<State>(s);
        if (e.state == State::kRunning) e.state = State::kPending;  // the studio ended mid-run
        e.message = o.value("message").toString();
        entries_.push_back(std::move(e));
      }
    }
  }
  endResetModel();
  return error;
}

}  // namespace wan_ui
