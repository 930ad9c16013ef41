// Runs one job from the GUI process: hands it to the engine's launcher (wan::launch_job, the same
// front end as `wan generate --world-size N`) on a background thread, polls the run's progress board
// with a QTimer (ranks, live preview), tails the workers' logs, and cleans up on cancel, on failure
// and on destruction (no orphan workers, no stale segment: the launcher reaps and unlinks). Signals
// arrive on the UI thread.
#pragma once
#include <QImage>
#include <QObject>
#include <QStringList>
#include <QTemporaryDir>
#include <QTimer>
#include <atomic>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "wan/job.h"
#include "wan/progress_board.h"

namespace wan_ui {

class RunSupervisor : public QObject {
  Q_OBJECT
 public:
  explicit RunSupervisor(QObject* parent = nullptr);
  ~RunSupervisor() override;  // cancels a running generation and waits for it to stop

  void setWorkerPath(const QString& path) { worker_path_ = path; }
  void setPollIntervalMs(int ms) { timer_.setInterval(ms); }

  // Checks the job's config, then starts (job.run_id is set here). Returns false with *error set when
  // it cannot start; errors the launcher finds before any worker starts come through finished().
  bool start(const wan::Job& job, QString* error);
  void cancel();  // stops within a sampling step
  bool isRunning() const { return running_; }
  bool waitForFinished(int timeout_ms);  // processes events until finished() was emitted

  QString runId() const { return run_id_; }
  const std::vector<wan::RankStatus>& ranks() const { return ranks_; }
  qint64 pidOf(int rank) const;

 signals:
  void started(const QString& run_id, int world_size);
  void ranksUpdated();
  void previewUpdated(const QImage& image, int step, int total);
  void logLines(const QStringList& lines);
  // exit_code 0 on success (video_path is then the finished video), else a wan::ErrorCode value and
  // a message that names the rank, the phase and the cause.
  void finished(int exit_code, const QString& message, const QString& video_path);

 private:
  void poll();
  void tailLogs();
  void onLauncherDone(int exit_code, const QString& message);

  QString worker_path_;
  QTimer timer_;
  std::unique_ptr<QTemporaryDir> run_dir_;
  std::thread thread_;
  std::atomic<bool> cancel_{false};
  bool running_ = false;
  QString run_id_, video_path_;
  int world_size_ = 0;
  std::optional<wan::ProgressBoard> board_;
  std::vector<wan::RankStatus> ranks_;
  std::vector<qint64> log_offsets_;
  std::vector<QByteArray> log_partial_;
  std::uint32_t preview_sequence_ = 0;
};

}  // namespace wan_ui
