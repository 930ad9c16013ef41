#include "main_window.h"

#include <QAction>
#include <QApplication>
#include <QClipboard>
#include <QCloseEvent>
#include <QComboBox>
#include <QDateTime>
#include <QDesktopServices>
#include <QDir>
#include <QEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QGridLayout>
#include <QGroupBox>
#include <QGuiApplication>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QInputDialog>
#include <QJsonDocument>
#include <QLabel>
#include <QLineEdit>
#include <QListView>
#include <QMenu>
#include <QMenuBar>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QRegularExpression>
#include <QScreen>
#include <QScrollArea>
#include <QScrollBar>
#include <QSettings>
#include <QShortcut>
#include <QSplitter>
#include <QStandardPaths>
#include <QStatusBar>
#include <QTabWidget>
#include <QTableView>
#include <QTimer>
#include <QUrl>
#include <QVBoxLayout>
#include <cstring>

#include "config_form.h"
#include "estimate_table_model.h"
#include "generation_form.h"
#include "history_model.h"
#include "job_queue.h"
#include "main_window_parts.h"
#include "model_panel.h"
#include "preset_store.h"
#include "run_supervisor.h"
#include "video_player.h"
#include "wan/error.h"
#include "wan/estimate.h"
#include "wan/job.h"
#include "wan/launcher.h"
#include "wan/prompt_tokens.h"
#include "wan/version.h"

namespace wan_ui {
using namespace main_window_detail;

MainWindow::MainWindow(const StudioOptions& options, QWidget* parent) : QMainWindow(parent), options_(options) {
  setWindowTitle("Wan Studio");
  system_ = wan::system_info();
  presets_ = std::make_unique<PresetStore>(options_.builtin_presets, options_.user_presets.isEmpty()
                                                                         ? PresetStore::defaultUserDir()
                                                                         : options_.user_presets);
  config_ = new ConfigForm;
  generation_ = new GenerationForm;
  estimate_ = new EstimateTableModel(this);
  history_ = new HistoryModel(this);
  supervisor_ = new RunSupervisor(this);
  queue_ = new JobQueueModel(this);
  player_ = new VideoPlayer;

  auto* left = new QWidget;
  auto* left_layout = new QVBoxLayout(left);
  model_panel_ = new ModelPanel(system_);
  connect(model_panel_, &ModelPanel::modelChanged, this, &MainWindow::onModelChanged);
  connect(model_panel_, &ModelPanel::loadOptionsChanged, this, &MainWindow::refreshEstimate);
  connect(model_panel_, &ModelPanel::lorasChanged, this, &MainWindow::updateDistillHint);
  left_layout->addWidget(group("Model", model_panel_));
  left_layout->addWidget(group("Preset", buildPresetPanel()));
  left_layout->addWidget(group("Distributed settings", config_));
  left_layout->addStretch(1);
  auto* left_scroll = new ColumnScrollArea(left, 300);
  left_scroll->setObjectName("leftColumn");
  auto* right_scroll = new ColumnScrollArea(buildSidePanel(), 240, 440);
  right_scroll->setObjectName("rightColumn");

  auto* splitter = new QSplitter;
  splitter->setObjectName("mainSplitter");
  splitter->setChildrenCollapsible(false);
  splitter->addWidget(left_scroll);
  splitter->addWidget(buildRunPanel());
  splitter->addWidget(right_scroll);
  splitter->setStretchFactor(0, 0);
  splitter->setStretchFactor(1, 2);
  splitter->setStretchFactor(2, 1);
  setCentralWidget(splitter);
  status_ = wrappingLabel("status");
  status_->setWordWrap(false);
  statusBar()->addWidget(status_, 1);

  connect(config_, &ConfigForm::changed, this, &MainWindow::refreshEstimate);
  connect(generation_, &GenerationForm::changed, this, &MainWindow::refreshEstimate);
  connect(generation_, &GenerationForm::outputFolderChanged, this, [this](const QString& folder) {
    if (!folder.isEmpty() && QDir(history_->folder()) != QDir(folder)) history_->setFolder(folder);
  });
  connect(supervisor_, &RunSupervisor::ranksUpdated, this, &MainWindow::onRanksUpdated);
  connect(supervisor_, &RunSupervisor::previewUpdated, this, [this](const QImage& image, int step, int total) {
    preview_->setPixmap(
        QPixmap::fromImage(image).scaled(preview_->size(), Qt::KeepAspectRatio, Qt::SmoothTransformation));
    preview_->setToolTip(QString("latent after step %1 of %2").arg(step).arg(total));
  });
  connect(supervisor_, &RunSupervisor::logLines, this, [this](const QStringList& lines) {
    for (const QString& l : lines) log_->appendPlainText(l);
  });
  connect(supervisor_, &RunSupervisor::finished, this, &MainWindow::onFinished);
  connect(config_, &ConfigForm::changed, this, &MainWindow::updatePresetState);
  buildMenus();

  config_->setEnvironment(wan::DistEnvironment{static_cast<int>(system_.gpus.size()), 0});
  estimate_->setGpuMemory(system_.gpus.empty() ? 0 : system_.gpus.front().memory_bytes);
  restoreSettings();
  refreshEstimate();
  queue_->setFile(queueFile());
  if (const QString e = queue_->load(); !e.isEmpty()) status_->setText(e);
  updatePresetState();
}

MainWindow::~MainWindow() = default;

bool MainWindow::gpuRun() const { return !system_.gpus.empty(); }
wan::Device MainWindow::device() const { return wan::parse_device_name(gpuRun() ? "cuda" : "cpu"); }

bool MainWindow::loadModel(const QString& folder) {
  const bool ok = model_panel_->loadFolder(folder);
  if (!ok) last_message_ = model_panel_->lastError();
  return ok;
}

void MainWindow::onModelChanged() {
  const auto& info = model_panel_->info();
  estimate_->setLoadedModel(info ? &info->dims : nullptr);
  generation_->setImageToVideo(info && info->dims.i2v);
  generation_->setTextImageToVideo(info && info->dims.ti2v);
  generation_->setMixtureOfExperts(info && info->moe);
  config_->setEnvironment(wan::DistEnvironment{static_cast<int>(system_.gpus.size()), info ? info->dims.num_heads : 0});
  updateDistillHint();
  updateTokenCounter();
  refreshEstimate();  // whether the fp8 weights can be kept depends on the files
}

void MainWindow::updateDistillHint() {
  QStringList names;
  const auto add = [&](const std::string& path) {
    if (!path.empty() && wan::looks_step_distilled(path)) names << QFileInfo(QString::fromStdString(path)).fileName();
  };
  std::string folder = model_panel_->files().model_dir;  // an official folder's name says it (StepDistill)
  while (folder.size() > 1 && folder.back() == '/') folder.pop_back();
  add(folder);
  if (const auto& info = model_panel_->info()) {
    add(info->dit_path);
    add(info->dit_high_path);
  }
  for (const wan::LoraFile& l : model_panel_->loras()) add(l.path);
  generation_->setDistilledFiles(names);
}

void MainWindow::updateTokenCounter() {
  if (!model_panel_->info()) {
    generation_->setTokenCounter(nullptr, "Token count: load a model to count the prompt's tokens.");
    return;
  }
  try {
    generation_->setTokenCounter(std::make_shared<const wan::PromptTokenCounter>(model_panel_->files()));
  } catch (const wan::Error& e) {
    generation_->setTokenCounter(nullptr,
                                 QString("No token count: the model's tokenizer cannot be read (%1).").arg(e.what()));
  }
}

void MainWindow::refreshEstimate() {
  wan::EstimateSettings s;
  const wan::GenerationRequest r = generation_->request();
  const QSize video = generation_->videoSize();  // image-to-video: the picture's shape within the area
  s.width = video.width();
  s.height = video.height();
  s.frames = r.frames;
  s.picture = !r.image.empty();
  s.step_cache = r.cache.enabled();
  s.fp8_weights = model_panel_->fp8Weights();
  s.gpu = gpuRun();
  s.config = config_->config();
  estimate_->setSettings(s);
  setRunning(supervisor_->isRunning());
}

std::optional<wan::Job> MainWindow::currentJob() {
  auto fail = [this](const QString& message) {
    last_message_ = message;
    status_->setText(message);
    return std::nullopt;
  };
  wan::GenerationRequest r = generation_->request();
  if (r.prompt.empty()) return fail("Write a prompt first.");
  if (!config_->isValid())
    return fail("The distributed settings are not valid: " +
                QString::fromStdString(config_->problems().front().message));
  if (!model_panel_->info()) {
    const bool ok = model_panel_->hasFiles() ? model_panel_->load(model_panel_->files())
                                             : model_panel_->loadFolder(QString::fromStdString(wan::demo_model_dir()));
    if (!ok) return fail(model_panel_->lastError());
  }
  r = generation_->request();  // the model may have just been loaded: image-to-video or not
  if (model_panel_->info()->dims.i2v && r.image.empty())
    return fail("This is an image-to-video model: choose a start picture first.");
  if (!model_panel_->info()->clip_error.empty()) return fail(QString::fromStdString(model_panel_->info()->clip_error));
  r.model = model_panel_->files();
  r.model.loras = model_panel_->loras();
  r.model.lora_allow_partial = model_panel_->loraAllowPartial();
  r.fp8_weights = model_panel_->fp8Weights();
  r.device = device();
  wan::Job job;
  job.request = r;
  job.config = config_->config();
  job.config.backend = wan::resolve_backend(job.config, r.device);
  return job;
}

bool MainWindow::startJob(wan::Job job, const QString& folder) {
  if (!QDir().mkpath(folder)) {
    last_message_ = "Cannot create the output folder " + folder;
    status_->setText(last_message_);
    return false;
  }
  if (QDir(history_->folder()) != QDir(folder)) history_->setFolder(folder);
  started_.emplace(job, folder);
  job.request.output = newOutputPath(folder).toStdString();
  const wan::DistConfig& c = job.config;
  QString error;
  log_->clear();
  if (!supervisor_->start(job, &error)) {
    last_message_ = error;
    status_->setText(error);
    return false;
  }
  run_started_ms_ = QDateTime::currentMSecsSinceEpoch();
  for (QProgressBar* b : rank_bars_) b->deleteLater();
  rank_bars_.clear();
  for (int i = 0; i < c.world_size; ++i) {
    auto* bar = new QProgressBar;
    bar->setObjectName(QString("rank%1").arg(i));
    bar->setFormat(QString("rank %1: starting").arg(i));
    bar->setValue(0);
    ranks_layout_->addWidget(bar);
    rank_bars_ << bar;
  }
  tabs_->setCurrentWidget(preview_);
  setRunning(true);
  last_message_ = "Running on " + QString::number(c.world_size) + " rank(s)…";
  status_->setText(last_message_);
  return true;
}

void MainWindow::generate() {
  if (supervisor_->isRunning()) return;
  const std::optional<wan::Job> job = currentJob();
  if (job) startJob(*job, generation_->outputFolder());
}

void MainWindow::addToQueue() {
  const std::optional<wan::Job> job = currentJob();
  if (!job) return;
  queue_->add(*job, generation_->outputFolder());
  last_message_ = QString("Added to the queue as job %1 (View > Queue; Run queue starts it).").arg(queue_->size());
  status_->setText(last_message_);
}

void MainWindow::runQueue() {
  if (supervisor_->isRunning()) {
    last_message_ = "A generation is running: the queue can start when it ends.";
    status_->setText(last_message_);
    return;
  }
  for (int i = 0; i < queue_->size(); ++i)  // a job cancelled before runs again
    if (queue_->at(i).state == JobQueueModel::State::kCancelled) queue_->setState(i, JobQueueModel::State::kPending);
  queue_running_ = true;
  runNextQueued();
}

void MainWindow::runNextQueued() {
  while (queue_running_) {
    const int row = queue_->nextPending();
    if (row < 0) {
      queue_running_ = false;
      queue_row_ = -1;
      last_message_ = QString("Queue finished: %1 done, %2 failed.")
                          .arg(queue_->count(JobQueueModel::State::kDone))
                          .arg(queue_->count(JobQueueModel::State::kFailed));
      status_->setText(last_message_);
      return;
    }
    queue_row_ = row;
    queue_->setState(row, JobQueueModel::State::kRunning);
    const JobQueueModel::Entry entry = queue_->at(row);
    if (startJob(entry.job, entry.folder)) {
      last_message_ = QString("Queue: job %1 of %2 running…").arg(row + 1).arg(queue_->size());
      status_->setText(last_message_);
      return;
    }
    queue_->setState(row, JobQueueModel::State::kFailed, last_message_);  // could not start: the next one
  }
}

void MainWindow::cancel() {
  if (!supervisor_->isRunning()) return;
  supervisor_->cancel();
  status_->setText("Cancelling (stops within a step)…");
}

void MainWindow::setRunning(bool running) {
  const bool valid = config_->isValid();
  generate_->setEnabled(!running && valid);
  queue_add_->setEnabled(valid);
  cancel_->setEnabled(running);
  config_->setEnabled(!running);
  // A disabled Generate says why, next to it.
  const QString why = !valid && !config_->problems().empty()
                          ? "Cannot generate: " + QString::fromStdString(config_->problems().front().message)
                          : QString();
  generate_reason_->setText(why);
  generate_reason_->setVisible(!why.isEmpty());
  generate_->setToolTip(why.isEmpty() ? "Start the run (Ctrl+Enter)" : why);
}

void MainWindow::onRanksUpdated() {
  const auto& ranks = supervisor_->ranks();
  double eta = -1, decode_eta = -1;
  for (int r = 0; r < rank_bars_.size() && r < static_cast<int>(ranks.size()); ++r) {
    const wan::RankStatus& s = ranks[r];
    const auto phase = static_cast<wan::Phase>(s.phase);
    QProgressBar* bar = rank_bars_[r];
    bar->setMaximum(std::max(1, s.total));
    bar->setValue(std::min(s.step, std::max(1, s.total)));
    bar->setFormat(QString::fromStdString(wan::format_rank_status(r, s)));
    if (phase == wan::Phase::kSampling && s.seconds_per_step > 0)
      eta = std::max(eta, (s.total - s.step) * s.seconds_per_step);
    if (phase == wan::Phase::kDecoding && s.seconds_per_step > 0)
      decode_eta = std::max(decode_eta, (s.total - s.step) * s.seconds_per_step);
  }
  const double elapsed = (QDateTime::currentMSecsSinceEpoch() - run_started_ms_) / 1000.0;
  QString text = QString("elapsed %1 s").arg(elapsed, 0, 'f', 0);
  if (eta >= 0)
    text += QString(" · sampling ends in about %1 s (then decoding)").arg(eta, 0, 'f', 0);
  else if (decode_eta >= 0)
    text += QString(" · decoding ends in about %1 s").arg(decode_eta, 0, 'f', 0);
  eta_->setText(text);
}

void MainWindow::onFinished(int exit_code, const QString& message, const QString& video_path) {
  setRunning(false);
  if (exit_code == 0) {
    last_message_ = "Done: " + video_path;
    QString error;
    if (player_->load(video_path, &error)) {
      tabs_->setCurrentWidget(player_);
      player_->play();
    } else {
      last_message_ += " (" + error + ")";
    }
  } else if (exit_code == static_cast<int>(wan::ErrorCode::kCancelled)) {
    // A cancel is what the user asked for: said plainly, and no bar or ETA left half full.
    last_message_ = "Cancelled.";
    for (int r = 0; r < rank_bars_.size(); ++r) {
      rank_bars_[r]->setValue(0);
      rank_bars_[r]->setFormat(QString("rank %1: cancelled").arg(r));
    }
    eta_->clear();
    log_->appendPlainText(last_message_);
  } else if (exit_code == static_cast<int>(wan::ErrorCode::kOutOfMemory) &&
             message.endsWith(QString(wan::kStartAnywayHint)) && started_ && !started_->first.request.force &&
             queue_row_ < 0 &&
             confirm("Not enough memory", message.chopped(static_cast<int>(std::strlen(wan::kStartAnywayHint))) +
                                              ".\n\nStart anyway? The run may fail when the memory runs out.")) {
    // Refused before it started: the user chose to try anyway.
    wan::Job job = started_->first;
    job.request.force = true;
    const QString folder = started_->second;
    if (!startJob(job, folder)) setRunning(false);
    return;
  } else {
    last_message_ =
        QString("Failed (%1): %2").arg(wan::error_code_name(static_cast<wan::ErrorCode>(exit_code)), message);
    log_->appendPlainText(last_message_);
    tabs_->setCurrentWidget(log_);
  }
  status_->setText(last_message_);
  history_->refresh();
  const bool queued = queue_row_ >= 0 && queue_row_ < queue_->size();
  if (queued) {
    const bool cancelled = exit_code == static_cast<int>(wan::ErrorCode::kCancelled);
    queue_->setState(queue_row_,
                     exit_code == 0 ? JobQueueModel::State::kDone
                     : cancelled    ? JobQueueModel::State::kCancelled
                                    : JobQueueModel::State::kFailed,
                     exit_code == 0 ? video_path
                     : cancelled    ? QString("cancelled")
                                    : last_message_);
    queue_row_ = -1;
    if (cancelled) {
      queue_running_ = false;  // Cancel pauses the queue
      last_message_ = "Cancelled. The queue is paused: Run queue goes on with the jobs left.";
      status_->setText(last_message_);
    }
  }
  emit runFinished(exit_code);
  if (queued && queue_running_) QTimer::singleShot(0, this, &MainWindow::runNextQueued);
}

bool MainWindow::previewShown() const { return !preview_->pixmap().isNull(); }
int MainWindow::progressBarCount() const { return rank_bars_.size(); }

void MainWindow::restoreSettings() {
  auto s = openSettings(options_);
  // The size and place of the last session; the first time, 1600x980 or what the screen has room for
  // (a 1366x768 laptop gets a window that fits, not one larger than its screen).
  if (!restoreGeometry(s->value("window/geometry").toByteArray())) {
    QSize size(1600, 980);
    if (const QScreen* screen = QGuiApplication::primaryScreen())
      size = size.boundedTo(screen->availableGeometry().size());
    resize(size.expandedTo(minimumSizeHint()));
  }
  restoreState(s->value("window/state").toByteArray());
  const QString videos = QStandardPaths::writableLocation(QStandardPaths::MoviesLocation);
  generation_->setOutputFolder(
      s->value("output/folder", (videos.isEmpty() ? QDir::homePath() : videos) + "/Wan Studio").toString());
  // The form's request and the config, through the job codec (what a history re-run reads too).
  wan::GenerationRequest r;
  r.prompt = "A red fox runs through fresh snow at dawn, cinematic";
  if (!gpuRun()) {
    // A first run on a machine without a GPU (the demo model): a clip that is done in seconds, not the
    // official 832x480, 81 frames, 50 steps (tens of minutes on a CPU). Saved settings win.
    r.width = 256;
    r.height = 160;
    r.frames = 17;
    r.steps = 10;
  }
  const QString request_json = s->value("generation/request").toString();
  if (!request_json.isEmpty()) {
    try {
      r = wan::request_from_json(request_json.toStdString(), r);
    } catch (const wan::Error&) {
      // Settings of another version: the defaults.
    }
  }
  generation_->setRequest(r);
  generation_->setStartImage(s->value("generation/image").toString());
  wan::DistConfig c;
  const QString config_json = s->value("dist/config").toString();
  if (!config_json.isEmpty()) {
    try {
      c = wan::dist_config_from_json(config_json.toStdString(), c);
    } catch (const wan::Error&) {
    }
  }
  c.backend = wan::resolve_backend(c, device());
  config_->setConfig(c);
  if (const QString name = s->value("preset/name").toString(); presetNames().contains(name)) {
    const QSignalBlocker block(presets_box_);  // shown as chosen, not applied again
    presets_box_->setCurrentText(name);
    presets_box_->setProperty("appliedName", name);
    preset_applied_ = s->value("preset/applied").toString();
  }
  history_->setFolder(generation_->outputFolder());
  wan::ModelFiles files;
  files.model_dir = s->value("model/folder").toString().toStdString();
  files.dit = s->value("model/dit").toString().toStdString();
  files.t5 = s->value("model/t5").toString().toStdString();
  files.vae = s->value("model/vae").toString().toStdString();
  files.clip = s->value("model/clip").toString().toStdString();
  // The LoRA list, through the job codec (a request that carries only them).
  if (const QString loras = s->value("model/loras").toString(); !loras.isEmpty()) {
    try {
      const wan::GenerationRequest saved = wan::request_from_json(loras.toStdString(), wan::GenerationRequest{});
      model_panel_->setLoras(saved.model.loras);
      model_panel_->setLoraAllowPartial(saved.model.lora_allow_partial);
      model_panel_->setFp8Weights(saved.fp8_weights);
    } catch (const wan::Error&) {
      // Settings of another version: no LoRAs.
    }
  }
  if (!files.model_dir.empty() || !files.dit.empty())
    model_panel_->load(files);
  else if (system_.gpus.empty())
    model_panel_->loadFolder(QString::fromStdString(wan::demo_model_dir()));  // no GPU: the demo
}

void MainWindow::saveSettings() const {
  auto s = openSettings(options_);
  s->setValue("window/geometry", saveGeometry());
  s->setValue("window/state", saveState());
  s->setValue("output/folder", generation_->outputFolder());
  const wan::ModelFiles& files = model_panel_->files();
  s->setValue("model/folder", QString::fromStdString(files.model_dir));
  s->setValue("model/dit", QString::fromStdString(files.dit));
  s->setValue("model/t5", QString::fromStdString(files.t5));
  s->setValue("model/vae", QString::fromStdString(files.vae));
  s->setValue("model/clip", QString::fromStdString(files.clip));
  wan::GenerationRequest with_loras;  // the model panel's settings, through the job codec
  with_loras.model.loras = model_panel_->loras();
  with_loras.model.lora_allow_partial = model_panel_->loraAllowPartial();
  with_loras.fp8_weights = model_panel_->keepFp8Checked() ? wan::Fp8Weights::kKeep : wan::Fp8Weights::kDequantize;
  s->setValue("model/loras", QString::fromStdString(wan::request_to_json(with_loras)));
  s->setValue("generation/request", QString::fromStdString(wan::request_to_json(generation_->request())));
  s->setValue("generation/image", generation_->startImage());
  s->setValue("dist/config", QString::fromStdString(wan::dist_config_to_json(config_->config())));
  s->setValue("preset/name", presets_box_->currentText());
  s->setValue("preset/applied", preset_applied_);  // what it gave: "modified" is shown again next time
}

bool MainWindow::confirm(const QString& title, const QString& question) {
  if (confirm_) return confirm_(title, question);
  return QMessageBox::question(this, title, question) == QMessageBox::Yes;
}

void MainWindow::closeEvent(QCloseEvent* event) {
  if (supervisor_->isRunning() && !confirm("Quit", "A generation is running. Stop it and close the window?")) {
    event->ignore();
    return;
  }
  if (supervisor_->isRunning()) {
    status_->setText("Stopping the run before closing…");
    supervisor_->cancel();
    supervisor_->waitForFinished(15000);  // the launcher stops every worker within its grace period
  }
  saveSettings();
  event->accept();
}

}  // namespace wan_ui
