#include "run_supervisor.h"

#include <QCoreApplication>
#include <QDateTime>
#include <QDeadlineTimer>
#include <QFile>

#include "wan/error.h"
#include "wan/launcher.h"

namespace wan_ui {
namespace {

constexpr int kPollIntervalMs = 100;  // board reads for the progress bars and the preview: 10 Hz

}  // namespace

RunSupervisor::RunSupervisor(QObject* parent) : QObject(parent) {
  worker_path_ = QString::fromStdString(wan::default_worker_path());
  timer_.setInterval(kPollIntervalMs);
  connect(&timer_, &QTimer::timeout, this, &RunSupervisor::poll);
}

RunSupervisor::~RunSupervisor() {
  if (thread_.joinable()) {
    cancel_ = true;
    thread_.join();  // the launcher stops every worker and unlinks the board before it returns
  }
}

bool RunSupervisor::start(const wan::Job& given, QString* error) {
  if (running_) {
    *error = "A generation is already running; cancel it first.";
    return false;
  }
  const auto problems = wan::validate_dist_config(given.config, wan::DistEnvironment{});
  if (!problems.empty()) {
    *error = QString::fromStdString(problems.front().message);
    return false;
  }
  run_dir_ = std::make_unique<QTemporaryDir>();
  if (!run_dir_->isValid()) {
    *error = "Cannot create a temporary folder for the run's logs: " + run_dir_->errorString();
    return false;
  }
  wan::Job job = given;
  run_id_ = QString("studio-%1-%2")
                .arg(QCoreApplication::applicationPid())
                .arg(QDateTime::currentMSecsSinceEpoch() % 100000000);
  job.run_id = run_id_.toStdString();
  world_size_ = job.config.world_size;
  video_path_ = QString::fromStdString(job.request.output);
  ranks_.assign(world_size_, wan::RankStatus{});
  log_offsets_.assign(world_size_, 0);
  log_partial_.assign(world_size_, {});
  preview_sequence_ = 0;
  board_.reset();
  cancel_ = false;

  wan::LaunchOptions o;
  o.worker_path = worker_path_.toStdString();
  o.log_dir = run_dir_->path().toStdString();
  o.cancel = &cancel_;
  running_ = true;
  thread_ = std::thread([this, job, o] {
    int code = 0;
    QString message;
    try {
      const wan::LaunchResult r = wan::launch_job(job, o);
      code = r.exit_code;
      message = QString::fromStdString(r.message);
    } catch (const wan::Error& e) {
      code = static_cast<int>(e.code());
      message = e.what();
    } catch (const std::exception& e) {
      code = static_cast<int>(wan::ErrorCode::kInternal);
      message = e.what();
    }
    QMetaObject::invokeMethod(
        this, [this, code, message] { onLauncherDone(code, message); }, Qt::QueuedConnection);
  });
  timer_.start();
  emit started(run_id_, world_size_);
  return true;
}

void RunSupervisor::cancel() {
  if (!running_) return;
  cancel_ = true;
  if (board_) board_->request_cancel();
}

qint64 RunSupervisor::pidOf(int rank) const {
  return rank >= 0 && rank < static_cast<int>(ranks_.size()) ? ranks_[rank].pid : 0;
}

bool RunSupervisor::waitForFinished(int timeout_ms) {
  QDeadlineTimer deadline(timeout_ms);
  while (running_ && !deadline.hasExpired()) QCoreApplication::processEvents(QEventLoop::AllEvents, 50);
  return !running_;
}

void RunSupervisor::poll() {
  if (!board_) {
    try {
      board_.emplace(wan::ProgressBoard::open(run_id_.toStdString()));
    } catch (const wan::Error&) {
      return;  // not created yet (or already gone)
    }
    if (cancel_) board_->request_cancel();
  }
  for (int r = 0; r < world_size_ && r < board_->world_size(); ++r) ranks_[r] = board_->read(r);
  emit ranksUpdated();
  wan::PreviewImage p;
  if (board_->read_preview(&p) && p.sequence != preview_sequence_) {
    preview_sequence_ = p.sequence;
    const QImage image(p.rgb.data(), p.width, p.height, p.width * 3, QImage::Format_RGB888);
    emit previewUpdated(image.copy(), p.step, p.total);
  }
  tailLogs();
}

void RunSupervisor::tailLogs() {
  if (!run_dir_) return;
  QStringList lines;
  for (int r = 0; r < world_size_; ++r) {
    QFile f(run_dir_->filePath(QString("rank-%1.log").arg(r)));
    if (!f.open(QIODevice::ReadOnly) || f.size() <= log_offsets_[r]) continue;
    f.seek(log_offsets_[r]);
    const QByteArray chunk = f.readAll();
    log_offsets_[r] += chunk.size();
    QByteArray text = log_partial_[r] + chunk;
    // Progress lines rewrite themselves with '\r'; keep the last state of each.
    text.replace('\r', '\n');
    const int end = text.lastIndexOf('\n');
    log_partial_[r] = text.mid(end + 1);
    for (const QByteArray& line : text.left(end).split('\n'))
      if (!line.trimmed().isEmpty()) lines << QString("[rank %1] %2").arg(r).arg(QString::fromUtf8(line));
  }
  if (!lines.isEmpty()) emit logLines(lines);
}

void RunSupervisor::onLauncherDone(int exit_code, const QString& message) {
  if (thread_.joinable()) thread_.join();
  timer_.stop();
  if (board_) {
    for (int r = 0; r < world_size_ && r < board_->world_size(); ++r) ranks_[r] = board_->read(r);
    emit ranksUpdated();
  }
  tailLogs();
  board_.reset();  // the launcher unlinked the segment; this drops our mapping
  running_ = false;
  const bool ok = exit_code == 0 && QFile::exists(video_path_);
  emit finished(exit_code, message, ok ? video_path_ : QString());
}

}  // namespace wan_ui
