// The job queue: snapshots of the form and the distributed settings (wan::Job) that run one after
// another. Saved to a JSON file (beside the studio's settings) on every change and read back at start;
// a restored queue does not start by itself.
#pragma once
#include <QAbstractListModel>
#include <QString>
#include <vector>

#include "wan/job.h"

namespace wan_ui {

class JobQueueModel : public QAbstractListModel {
  Q_OBJECT
 public:
  enum class State { kPending, kRunning, kDone, kFailed, kCancelled };
  struct Entry {
    wan::Job job;    // request (model files and device included; output chosen when it runs) and config
    QString folder;  // the output folder
    State state = State::kPending;
    QString message;  // the video when done, the cause when failed
  };

  explicit JobQueueModel(QObject* parent = nullptr);

  // Where the queue is saved ("" : nowhere). load() reads it; a missing file is an empty queue. A job
  // that was running when the studio ended is pending again.
  void setFile(const QString& path) { file_ = path; }
  QString file() const { return file_; }
  QString load();  // error message, empty on success

  int rowCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role) const override;

  const Entry& at(int row) const { return entries_[static_cast<std::size_t>(row)]; }
  int size() const { return static_cast<int>(entries_.size()); }
  void add(const wan::Job& job, const QString& folder);
  bool move(int row, int delta);  // up (-1) or down (+1); false at an end
  bool remove(int row);           // the running entry cannot be removed
  void setState(int row, State state, const QString& message = {});
  int nextPending() const;  // -1: none
  int count(State state) const;
  static QString stateName(State state);

 private:
  void save() const;
  std::vector<Entry> entries_;
  QString file_;
};

}  // namespace wan_ui
