#include "main_window.h"

#include <QCloseEvent>
#include <QComboBox>
#include <QDateTime>
#include <QDir>
#include <QFileDialog>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QInputDialog>
#include <QJsonDocument>
#include <QLabel>
#include <QLineEdit>
#include <QListView>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QScrollArea>
#include <QSettings>
#include <QShortcut>
#include <QSplitter>
#include <QStandardPaths>
#include <QStatusBar>
#include <QTabWidget>
#include <QTableView>
#include <QVBoxLayout>

#include "config_form.h"
#include "estimate_table_model.h"
#include "generation_form.h"
#include "history_model.h"
#include "model_panel.h"
#include "preset_store.h"
#include "run_supervisor.h"
#include "video_player.h"
#include "wan/error.h"
#include "wan/estimate.h"
#include "wan/job.h"
#include "wan/launcher.h"

namespace wan_ui {
namespace {

constexpr const char* kAuto = "Auto";

std::unique_ptr<QSettings> openSettings(const StudioOptions& o) {
  if (!o.settings_file.isEmpty()) return std::make_unique<QSettings>(o.settings_file, QSettings::IniFormat);
  return std::make_unique<QSettings>();
}

QGroupBox* group(const QString& title, QWidget* content) {
  auto* g = new QGroupBox(title);
  auto* l = new QVBoxLayout(g);
  l->addWidget(content);
  return g;
}

}  // namespace

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
  player_ = new VideoPlayer;

  auto* left = new QWidget;
  auto* left_layout = new QVBoxLayout(left);
  model_panel_ = new ModelPanel(system_);
  connect(model_panel_, &ModelPanel::modelChanged, this, &MainWindow::onModelChanged);
  left_layout->addWidget(group("Model", model_panel_));
  left_layout->addWidget(group("Preset", buildPresetPanel()));
  left_layout->addWidget(group("Distributed settings", config_));
  left_layout->addStretch(1);
  auto* left_scroll = new QScrollArea;
  left_scroll->setWidget(left);
  left_scroll->setWidgetResizable(true);
  left_scroll->setMinimumWidth(430);

  auto* splitter = new QSplitter;
  splitter->setObjectName("mainSplitter");
  splitter->addWidget(left_scroll);
  splitter->addWidget(buildRunPanel());
  splitter->addWidget(buildSidePanel());
  splitter->setStretchFactor(1, 2);
  setCentralWidget(splitter);
  status_ = new QLabel;
  statusBar()->addWidget(status_, 1);

  connect(config_, &ConfigForm::changed, this, &MainWindow::refreshEstimate);
  connect(generation_, &GenerationForm::changed, this, &MainWindow::refreshEstimate);
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
  new QShortcut(QKeySequence("Ctrl+Return"), this, [this] { generate(); });
  new QShortcut(QKeySequence("Escape"), this, [this] { cancel(); });
  new QShortcut(QKeySequence("Ctrl+P"), this, [this] { player_->togglePlay(); });

  config_->setEnvironment(wan::DistEnvironment{static_cast<int>(system_.gpus.size()), 0});
  estimate_->setGpuMemory(system_.gpus.empty() ? 0 : system_.gpus.front().memory_bytes);
  restoreSettings();
  refreshEstimate();
}

MainWindow::~MainWindow() = default;

QWidget* MainWindow::buildPresetPanel() {
  auto* w = new QWidget;
  auto* l = new QVBoxLayout(w);
  presets_box_ = new QComboBox;
  presets_box_->setObjectName("presets");
  presets_box_->setToolTip("Auto: the fastest layout that fits in this machine's GPUs (memory estimator).");
  auto* apply = new QPushButton("Apply");
  auto* save = new QPushButton("Save as…");
  auto* rename = new QPushButton("Rename…");
  auto* remove = new QPushButton("Delete");
  l->addWidget(presets_box_);
  auto* buttons = new QHBoxLayout;
  for (QPushButton* b : {apply, save, rename, remove}) buttons->addWidget(b);
  l->addLayout(buttons);
  refreshPresets();
  connect(apply, &QPushButton::clicked, this, [this] { applyPreset(presets_box_->currentText()); });
  connect(save, &QPushButton::clicked, this, [this] {
    const QString name = QInputDialog::getText(this, "Save preset", "Name:");
    if (name.isEmpty()) return;
    if (QString e = presets_->save(name, config_->config()); !e.isEmpty())
      return void(QMessageBox::warning(this, "Save preset", e));
    refreshPresets(name);
  });
  connect(rename, &QPushButton::clicked, this, [this] {
    const QString from = presets_box_->currentText();
    const QString to = QInputDialog::getText(this, "Rename preset", "New name:", QLineEdit::Normal, from);
    if (to.isEmpty() || to == from) return;
    if (QString e = presets_->rename(from, to); !e.isEmpty())
      return void(QMessageBox::warning(this, "Rename preset", e));
    refreshPresets(to);
  });
  connect(remove, &QPushButton::clicked, this, [this] {
    if (QString e = presets_->remove(presets_box_->currentText()); !e.isEmpty())
      return void(QMessageBox::warning(this, "Delete preset", e));
    refreshPresets();
  });
  return w;
}

QWidget* MainWindow::buildRunPanel() {
  auto* w = new QWidget;
  auto* l = new QVBoxLayout(w);
  l->addWidget(group("Generation", generation_));
  generate_ = new QPushButton("Generate  (Ctrl+Enter)");
  generate_->setObjectName("generateButton");
  cancel_ = new QPushButton("Cancel  (Esc)");
  cancel_->setObjectName("cancelButton");
  cancel_->setEnabled(false);
  auto* buttons = new QHBoxLayout;
  buttons->addWidget(generate_, 1);
  buttons->addWidget(cancel_);
  l->addLayout(buttons);
  auto* ranks = new QWidget;
  ranks_layout_ = new QVBoxLayout(ranks);
  ranks_layout_->setContentsMargins(0, 0, 0, 0);
  eta_ = new QLabel;
  eta_->setObjectName("eta");
  ranks_layout_->addWidget(eta_);
  l->addWidget(group("Progress per rank", ranks));
  tabs_ = new QTabWidget;
  preview_ = new QLabel("The live preview of the latent appears here while sampling.");
  preview_->setObjectName("preview");
  preview_->setAlignment(Qt::AlignCenter);
  preview_->setMinimumSize(320, 200);
  preview_->setStyleSheet("background: #111; color: #bbb;");
  log_ = new QPlainTextEdit;
  log_->setObjectName("log");
  log_->setReadOnly(true);
  log_->setMaximumBlockCount(5000);
  tabs_->addTab(preview_, "Live preview");
  tabs_->addTab(player_, "Player");
  tabs_->addTab(log_, "Log");
  l->addWidget(tabs_, 1);
  connect(generate_, &QPushButton::clicked, this, &MainWindow::generate);
  connect(cancel_, &QPushButton::clicked, this, &MainWindow::cancel);
  return w;
}

QWidget* MainWindow::buildSidePanel() {
  auto* w = new QWidget;
  auto* l = new QVBoxLayout(w);
  estimate_view_ = new QTableView;
  estimate_view_->setObjectName("estimateTable");
  estimate_view_->setModel(estimate_);
  estimate_view_->horizontalHeader()->setSectionResizeMode(QHeaderView::Stretch);
  estimate_view_->setMinimumWidth(420);
  estimate_view_->setMaximumHeight(150);
  l->addWidget(group(gpuRun() ? "Estimated peak memory per GPU (hover for the split)"
                              : "Estimated peak memory per CPU process (no GPU here; hover for the split)",
                     estimate_view_));
  history_view_ = new QListView;
  history_view_->setObjectName("history");
  history_view_->setModel(history_);
  history_view_->setIconSize(QSize(96, 96));
  history_view_->setWordWrap(true);
  auto* rerun = new QPushButton("Re-run");
  auto* play = new QPushButton("Play");
  auto* remove = new QPushButton("Delete");
  auto* buttons = new QHBoxLayout;
  for (QPushButton* b : {play, rerun, remove}) buttons->addWidget(b);
  auto* history_box = new QWidget;
  auto* hl = new QVBoxLayout(history_box);
  hl->setContentsMargins(0, 0, 0, 0);
  hl->addWidget(history_view_, 1);
  hl->addLayout(buttons);
  l->addWidget(group("History", history_box), 1);
  auto row = [this] { return history_view_->currentIndex().row(); };
  connect(play, &QPushButton::clicked, this, [this, row] {
    if (player_->load(history_->videoPathAt(row()))) tabs_->setCurrentWidget(player_);
  });
  connect(history_view_, &QListView::doubleClicked, this, [this](const QModelIndex& i) {
    if (player_->load(history_->videoPathAt(i.row()))) tabs_->setCurrentWidget(player_);
  });
  connect(rerun, &QPushButton::clicked, this, [this, row] {
    const QJsonObject s = history_->settingsAt(row());
    if (s.isEmpty()) return;
    try {
      // The request as it ran (seed fixed) and its config, through the job codec; the output folder stays.
      const wan::Job job = wan::job_from_sidecar(QJsonDocument(s).toJson().toStdString());
      generation_->setRequest(job.request);
      wan::DistConfig c = job.config;
      c.backend = wan::resolve_backend(c, device());
      config_->setConfig(c);
      status_->setText("Settings of that video restored: press Generate to run it again.");
    } catch (const wan::Error& e) {
      status_->setText(QString("Cannot re-run this entry: %1").arg(e.what()));
    }
  });
  connect(remove, &QPushButton::clicked, this, [this, row] {
    const int r = row();
    if (r < 0) return;
    const QString video = history_->videoPathAt(r);
    if (!confirm("Delete", "Move " + video + " and its settings to the trash?")) return;
    QString e = history_->remove(r);
    if (!e.isEmpty() && confirm("Delete", e + " Delete " + video + " and its settings for good?"))
      e = history_->remove(r, false);
    if (!e.isEmpty()) status_->setText(e);
  });
  return w;
}

QStringList MainWindow::presetNames() const {
  QStringList out = {kAuto};
  out << presets_->names();
  return out;
}

void MainWindow::refreshPresets(const QString& select) {
  presets_box_->clear();
  presets_box_->addItems(presetNames());
  if (!select.isEmpty()) presets_box_->setCurrentText(select);
}

bool MainWindow::gpuRun() const { return !system_.gpus.empty(); }
wan::Device MainWindow::device() const { return wan::parse_device_name(gpuRun() ? "cuda" : "cpu"); }

bool MainWindow::applyPreset(const QString& name) {
  wan::DistConfig c;
  if (name == kAuto) {
    wan::EstimateSettings s;
    const wan::GenerationRequest r = generation_->request();
    s.width = r.width;
    s.height = r.height;
    s.frames = r.frames;
    s.config = config_->config();
    const wan::ModelDims dims = model_panel_->info() ? model_panel_->info()->dims : wan::wan21_t2v_1_3b();
    const wan::AutoLayout a = wan::auto_layout(dims, s, static_cast<int>(system_.gpus.size()),
                                               system_.gpus.empty() ? 0 : system_.gpus.front().memory_bytes);
    c = a.config;
    last_message_ = "Auto: " + QString::fromStdString(a.reason);
  } else {
    try {
      c = presets_->load(name);
    } catch (const wan::Error& e) {
      last_message_ = e.what();
      status_->setText(last_message_);
      return false;
    }
    last_message_ = "Preset " + name + " applied.";
  }
  c.backend = wan::resolve_backend(c, device());  // no GPU here: CPU processes over gloo
  config_->setConfig(c);
  status_->setText(last_message_);
  return true;
}

bool MainWindow::loadModel(const QString& folder) {
  const bool ok = model_panel_->loadFolder(folder);
  if (!ok) last_message_ = model_panel_->lastError();
  return ok;
}

void MainWindow::onModelChanged() {
  const auto& info = model_panel_->info();
  estimate_->setLoadedModel(info ? &info->dims : nullptr);
  generation_->setImageToVideo(info && info->dims.i2v);
  config_->setEnvironment(wan::DistEnvironment{static_cast<int>(system_.gpus.size()), info ? info->dims.num_heads : 0});
}

void MainWindow::refreshEstimate() {
  wan::EstimateSettings s;
  const wan::GenerationRequest r = generation_->request();
  const QSize video = generation_->videoSize();  // image-to-video: the picture's shape within the area
  s.width = video.width();
  s.height = video.height();
  s.frames = r.frames;
  s.gpu = gpuRun();
  s.config = config_->config();
  estimate_->setSettings(s);
  generate_->setEnabled(!supervisor_->isRunning() && config_->isValid());
}

void MainWindow::generate() {
  if (supervisor_->isRunning()) return;
  wan::GenerationRequest r = generation_->request();
  if (r.prompt.empty()) {
    last_message_ = "Write a prompt first.";
    status_->setText(last_message_);
    return;
  }
  if (!model_panel_->info()) {
    const bool ok = model_panel_->hasFiles() ? model_panel_->load(model_panel_->files())
                                             : model_panel_->loadFolder(QString::fromStdString(wan::demo_model_dir()));
    if (!ok) {
      last_message_ = model_panel_->lastError();
      status_->setText(last_message_);
      return;
    }
  }
  r = generation_->request();  // the model may have just been loaded: image-to-video or not
  if (model_panel_->info()->dims.i2v && r.image.empty()) {
    last_message_ = "This is an image-to-video model: choose a start picture first.";
    status_->setText(last_message_);
    return;
  }
  if (!model_panel_->info()->clip_error.empty()) {
    last_message_ = QString::fromStdString(model_panel_->info()->clip_error);
    status_->setText(last_message_);
    return;
  }
  r.model = model_panel_->files();
  r.device = device();
  const QString folder = generation_->outputFolder();
  if (!QDir().mkpath(folder)) {
    last_message_ = "Cannot create the output folder " + folder;
    status_->setText(last_message_);
    return;
  }
  if (QDir(history_->folder()) != QDir(folder)) history_->setFolder(folder);
  r.output =
      QDir(folder).filePath("wan-" + QDateTime::currentDateTime().toString("yyyyMMdd-hhmmss") + ".mp4").toStdString();
  wan::Job job;
  job.request = r;
  job.config = config_->config();
  job.config.backend = wan::resolve_backend(job.config, r.device);
  const wan::DistConfig& c = job.config;
  QString error;
  log_->clear();
  if (!supervisor_->start(job, &error)) {
    last_message_ = error;
    status_->setText(error);
    return;
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
}

void MainWindow::cancel() {
  if (!supervisor_->isRunning()) return;
  supervisor_->cancel();
  status_->setText("Cancelling (stops within a step)…");
}

void MainWindow::setRunning(bool running) {
  generate_->setEnabled(!running && config_->isValid());
  cancel_->setEnabled(running);
  config_->setEnabled(!running);
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
  } else {
    last_message_ =
        QString("Failed (%1): %2").arg(wan::error_code_name(static_cast<wan::ErrorCode>(exit_code)), message);
    log_->appendPlainText(last_message_);
    tabs_->setCurrentWidget(log_);
  }
  status_->setText(last_message_);
  history_->refresh();
  emit runFinished(exit_code);
}

bool MainWindow::previewShown() const { return !preview_->pixmap().isNull(); }
int MainWindow::progressBarCount() const { return rank_bars_.size(); }

void MainWindow::restoreSettings() {
  auto s = openSettings(options_);
  restoreGeometry(s->value("window/geometry").toByteArray());
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
  history_->setFolder(generation_->outputFolder());
  wan::ModelFiles files;
  files.model_dir = s->value("model/folder").toString().toStdString();
  files.dit = s->value("model/dit").toString().toStdString();
  files.t5 = s->value("model/t5").toString().toStdString();
  files.vae = s->value("model/vae").toString().toStdString();
  files.clip = s->value("model/clip").toString().toStdString();
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
  s->setValue("generation/request", QString::fromStdString(wan::request_to_json(generation_->request())));
  s->setValue("generation/image", generation_->startImage());
  s->setValue("dist/config", QString::fromStdString(wan::dist_config_to_json(config_->config())));
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
