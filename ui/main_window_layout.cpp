// The main window's panels, menus, About text and equivalent command line (main_window.h).
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
#include <numeric>

#include "config_form.h"
#include "estimate_table_model.h"
#include "generation_form.h"
#include "history_model.h"
#include "job_queue.h"
#include "main_window.h"
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

QWidget* MainWindow::buildPresetPanel() {
  auto* w = new QWidget;
  auto* l = new QVBoxLayout(w);
  presets_box_ = new QComboBox;
  presets_box_->setObjectName("presets");
  presets_box_->setToolTip("Choosing a preset applies it at once (Edit > Undo preset brings the settings back).");
  preset_description_ = wrappingLabel("presetDescription");
  preset_state_ = wrappingLabel("presetState");
  preset_state_->setStyleSheet("color: #b26a00;");
  auto* apply = new QPushButton("Reapply");
  apply->setToolTip("Set the selected preset's values again (your changes to them are undone).");
  auto* save = new QPushButton("Save as…");
  save->setToolTip("Save the current settings as your own preset.");
  rename_preset_ = new QPushButton("Rename…");
  rename_preset_->setObjectName("renamePreset");
  remove_preset_ = new QPushButton("Delete");
  remove_preset_->setObjectName("deletePreset");
  l->addWidget(presets_box_);
  l->addWidget(preset_description_);
  l->addWidget(preset_state_);
  auto* buttons = new QGridLayout;
  buttons->addWidget(apply, 0, 0);
  buttons->addWidget(save, 0, 1);
  buttons->addWidget(rename_preset_, 1, 0);
  buttons->addWidget(remove_preset_, 1, 1);
  l->addLayout(buttons);
  refreshPresets();
  connect(presets_box_, &QComboBox::currentTextChanged, this, [this](const QString& name) {
    if (!name.isEmpty()) applyPreset(name);
  });
  connect(apply, &QPushButton::clicked, this, [this] { applyPreset(presets_box_->currentText()); });
  connect(save, &QPushButton::clicked, this, [this] {
    const QString name = QInputDialog::getText(this, "Save preset", "Name:");
    if (name.isEmpty()) return;
    if (QString e = presets_->save(name, config_->config()); !e.isEmpty())
      return void(QMessageBox::warning(this, "Save preset", e));
    refreshPresets(name);
    preset_applied_ = QString::fromStdString(wan::dist_config_to_json(config_->config()));
    updatePresetState();
  });
  connect(rename_preset_, &QPushButton::clicked, this, [this] {
    const QString from = presets_box_->currentText();
    const QString to = QInputDialog::getText(this, "Rename preset", "New name:", QLineEdit::Normal, from);
    if (to.isEmpty() || to == from) return;
    if (QString e = presets_->rename(from, to); !e.isEmpty())
      return void(QMessageBox::warning(this, "Rename preset", e));
    refreshPresets(to);
  });
  connect(remove_preset_, &QPushButton::clicked, this, [this] {
    const QString name = presets_box_->currentText();
    if (!confirm("Delete preset", "Delete your preset \"" + name + "\"?")) return;
    if (QString e = presets_->remove(name); !e.isEmpty()) return void(QMessageBox::warning(this, "Delete preset", e));
    preset_applied_.clear();
    refreshPresets(kAuto);
  });
  return w;
}

QWidget* MainWindow::buildRunPanel() {
  // Top: the form (scrolls when the window is low); then the buttons and the bars, always in view
  // whatever the form's scroll position; below: the tabs.
  auto* top = new QWidget;
  auto* form_layout = new QVBoxLayout(top);
  form_layout->setContentsMargins(0, 0, 0, 0);
  form_layout->addWidget(group("Generation", generation_));
  auto* controls = new QWidget;
  controls->setObjectName("runControls");
  auto* l = new QVBoxLayout(controls);
  l->setContentsMargins(0, 0, 0, 0);
  generate_ = new QPushButton("&Generate  (Ctrl+Enter)");
  generate_->setObjectName("generateButton");
  cancel_ = new QPushButton("Cancel  (Esc)");
  cancel_->setObjectName("cancelButton");
  cancel_->setEnabled(false);
  queue_add_ = new QPushButton("Add to &queue");
  queue_add_->setObjectName("addToQueueButton");
  queue_add_->setToolTip("Keep the current form and distributed settings as a job in the queue (Ctrl+Shift+Enter).");
  auto* buttons = new QHBoxLayout;
  buttons->addWidget(generate_, 1);
  buttons->addWidget(queue_add_);
  buttons->addWidget(cancel_);
  l->addLayout(buttons);
  generate_reason_ = wrappingLabel("generateReason");
  generate_reason_->setStyleSheet("color: #c62828;");
  generate_reason_->setVisible(false);
  l->addWidget(generate_reason_);
  auto* ranks = new QWidget;
  ranks_layout_ = new QVBoxLayout(ranks);
  ranks_layout_->setContentsMargins(0, 0, 0, 0);
  eta_ = wrappingLabel("eta");
  ranks_layout_->addWidget(eta_);
  l->addWidget(group("Progress per rank", ranks));
  auto* top_scroll = new ColumnScrollArea(top, 0);
  top_scroll->setObjectName("runColumn");
  // All it needs when there is room (the tabs take the rest), less (scrolling) on a low screen.
  top_scroll->setSizePolicy(QSizePolicy::Preferred, QSizePolicy::Maximum);

  tabs_ = new CompactTabs;
  tabs_->setObjectName("runTabs");
  preview_ = new QLabel("The live preview of the latent appears here while sampling.");
  preview_->setObjectName("preview");
  preview_->setAlignment(Qt::AlignCenter);
  preview_->setWordWrap(true);
  preview_->setMinimumSize(240, 120);
  preview_->setStyleSheet("background: #111; color: #bbb;");
  log_ = new QPlainTextEdit;
  log_->setObjectName("log");
  log_->setReadOnly(true);
  log_->setMaximumBlockCount(5000);
  tabs_->addTab(preview_, "Live preview");
  tabs_->addTab(player_, "Player");
  tabs_->addTab(log_, "Log");
  tabs_->addTab(buildQueuePanel(), "Queue");

  auto* w = new QWidget;
  auto* column = new QVBoxLayout(w);
  column->setContentsMargins(0, 0, 0, 0);
  column->addWidget(top_scroll, 0);
  column->addWidget(controls, 0);
  column->addWidget(tabs_, 1);
  connect(generate_, &QPushButton::clicked, this, &MainWindow::generate);
  connect(cancel_, &QPushButton::clicked, this, &MainWindow::cancel);
  connect(queue_add_, &QPushButton::clicked, this, &MainWindow::addToQueue);
  return w;
}

QWidget* MainWindow::buildQueuePanel() {
  auto* w = new QWidget;
  w->setObjectName("queuePanel");
  auto* l = new QVBoxLayout(w);
  auto* note = wrappingLabel("queueNote");
  note->setText(
      "Jobs run one after another, each into its own video. A failed job is marked failed and the queue goes "
      "on; Cancel stops the current job and pauses the queue (Run queue goes on from there).");
  l->addWidget(note);
  queue_view_ = new QListView;
  queue_view_->setObjectName("queue");
  queue_view_->setModel(queue_);
  queue_view_->setWordWrap(true);
  queue_view_->setAlternatingRowColors(true);
  l->addWidget(queue_view_, 1);
  auto* up = new QPushButton("Move up");
  auto* down = new QPushButton("Move down");
  auto* remove = new QPushButton("Remove");
  auto* run = new QPushButton("Run queue");
  run->setObjectName("runQueueButton");
  auto* buttons = new QHBoxLayout;
  for (QPushButton* b : {up, down, remove}) buttons->addWidget(b);
  buttons->addStretch(1);
  buttons->addWidget(run);
  l->addLayout(buttons);
  auto row = [this] { return queue_view_->currentIndex().row(); };
  auto select = [this](int r) { queue_view_->setCurrentIndex(queue_->index(r)); };
  connect(up, &QPushButton::clicked, this, [this, row, select] {
    const int r = row();
    if (queue_->move(r, -1)) select(r - 1);
  });
  connect(down, &QPushButton::clicked, this, [this, row, select] {
    const int r = row();
    if (queue_->move(r, +1)) select(r + 1);
  });
  connect(remove, &QPushButton::clicked, this, [this, row] {
    const int r = row();
    if (r < 0) return;
    if (!queue_->remove(r))
      status_->setText("The running job cannot be removed: cancel it first.");
    else if (queue_row_ > r)
      --queue_row_;
  });
  connect(run, &QPushButton::clicked, this, &MainWindow::runQueue);
  return w;
}

QWidget* MainWindow::buildSidePanel() {
  auto* w = new QWidget;
  auto* l = new QVBoxLayout(w);
  estimate_view_ = new QTableView;
  estimate_view_->setObjectName("estimateTable");
  estimate_view_->setModel(estimate_);
  // Columns share the width, never narrower than "54.4 GiB": a narrow column scrolls the table instead.
  estimate_view_->horizontalHeader()->setSectionResizeMode(QHeaderView::Stretch);
  estimate_view_->horizontalHeader()->setMinimumSectionSize(
      estimate_view_->fontMetrics().horizontalAdvance("888.8 GiB") + 12);
  estimate_view_->verticalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  estimate_view_->setHorizontalScrollBarPolicy(Qt::ScrollBarAsNeeded);
  estimate_view_->setMinimumHeight(110);
  estimate_view_->setMaximumHeight(150);
  auto* estimate_box =
      group(gpuRun() ? "Peak memory per GPU (estimate)" : "Peak memory per CPU process (estimate)", estimate_view_);
  estimate_box->setToolTip(gpuRun()
                               ? "Estimated peak memory per GPU; hover a cell for the split."
                               : "No GPU here: estimated peak memory per CPU process; hover a cell for the split.");
  l->addWidget(estimate_box);
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
      model_panel_->setLoras(job.request.model.loras);
      model_panel_->setLoraAllowPartial(job.request.model.lora_allow_partial);
      model_panel_->setFp8Weights(job.request.fp8_weights);
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

void MainWindow::buildMenus() {
  auto add = [this](QMenu* menu, const QString& text, const QKeySequence& key, auto slot, const QString& name = {}) {
    QAction* a = menu->addAction(text);
    a->setShortcut(key);
    a->setShortcutContext(Qt::WindowShortcut);
    if (!name.isEmpty()) a->setObjectName(name);
    connect(a, &QAction::triggered, this, slot);
    return a;
  };
  QMenu* file = menuBar()->addMenu("&File");
  add(
      file, "&Open model folder…", QKeySequence("Ctrl+O"),
      [this] {
        const QString d = QFileDialog::getExistingDirectory(this, "Model folder",
                                                            QString::fromStdString(model_panel_->files().model_dir));
        if (!d.isEmpty()) loadModel(d);
      },
      "openModelAction");
  add(
      file, "Open o&utput folder", QKeySequence("Ctrl+Shift+O"),
      [this] {
        const QString folder = generation_->outputFolder();
        QDir().mkpath(folder);
        if (!QDesktopServices::openUrl(QUrl::fromLocalFile(folder)))
          status_->setText("No file manager could open " + folder);
      },
      "openOutputAction");
  add(
      file, "&Copy command line", QKeySequence("Ctrl+Shift+C"),
      [this] {
        QApplication::clipboard()->setText(commandLine());
        last_message_ = "Copied the `wan generate` command of these settings to the clipboard.";
        const wan::DistConfig c = config_->config(), d;
        if (c.param_dtype != d.param_dtype || c.reduce_dtype != d.reduce_dtype || c.buffer_dtype != d.buffer_dtype ||
            c.sync_module_states != d.sync_module_states || c.attention_mode != d.attention_mode ||
            c.collective_timeout_seconds != d.collective_timeout_seconds)
          last_message_ +=
              " Dtypes, loading, attention and the collective timeout have no flag: save a preset and add "
              "--dist-config with its file.";
        status_->setText(last_message_);
      },
      "copyCommandAction");
  file->addSeparator();
  add(
      file, "&Quit", QKeySequence("Ctrl+Q"), [this] { close(); }, "quitAction");

  QMenu* edit = menuBar()->addMenu("&Edit");
  add(
      edit, "&Generate", QKeySequence("Ctrl+Return"), [this] { generate(); }, "generateAction");
  add(
      edit, "&Cancel", QKeySequence("Escape"), [this] { cancel(); }, "cancelAction");
  edit->addSeparator();
  add(
      edit, "&Add to queue", QKeySequence("Ctrl+Shift+Return"), [this] { addToQueue(); }, "addToQueueAction");
  add(
      edit, "&Run queue", QKeySequence("Ctrl+Shift+R"), [this] { runQueue(); }, "runQueueAction");
  edit->addSeparator();
  undo_preset_action_ = add(
      edit, "&Undo preset", QKeySequence("Ctrl+Alt+Z"), [this] { undoPreset(); }, "undoPresetAction");
  undo_preset_action_->setEnabled(false);

  QMenu* view = menuBar()->addMenu("&View");
  const QList<QWidget*> pages = {preview_, player_, log_, queue_view_->parentWidget()};
  for (int i = 0; i < pages.size(); ++i) {
    QWidget* page = pages[i];
    add(view, "&" + QString::number(i + 1) + " " + tabs_->tabText(tabs_->indexOf(page)),
        QKeySequence(QString("Ctrl+%1").arg(i + 1)), [this, page] { tabs_->setCurrentWidget(page); });
  }
  view->addSeparator();
  add(
      view, "&Play / pause", QKeySequence("Ctrl+P"), [this] { player_->togglePlay(); }, "playAction");

  QMenu* help = menuBar()->addMenu("&Help");
  add(
      help, "&README", QKeySequence(QKeySequence::HelpContents),
      [this] {
        // The README installed with the studio, or the one of the source tree it was built from.
        const QStringList candidates = {QCoreApplication::applicationDirPath() + "/../share/doc/wan-studio/README.md",
                                        QCoreApplication::applicationDirPath() + "/../../README.md",
                                        QStringLiteral(WAN_STUDIO_SOURCE_README)};
        for (const QString& c : candidates)
          if (QFileInfo::exists(c) && QDesktopServices::openUrl(QUrl::fromLocalFile(QFileInfo(c).absoluteFilePath())))
            return;
        status_->setText("The README is README.md in the source tree (" + QStringLiteral(WAN_STUDIO_SOURCE_README) +
                         ") and in /usr/share/doc/wan-studio/ when installed.");
      },
      "readmeAction");
  add(
      help, "&About Wan Studio", QKeySequence(),
      [this] {
        QMessageBox::about(this, "About Wan Studio",
                           "<b>Wan Studio</b><br>Multi-GPU Wan2.1 text-to-video and image-to-video.<pre>" +
                               aboutText().toHtmlEscaped() + "</pre>");
      },
      "aboutAction");
}

QString MainWindow::aboutText() {
  return QString::fromStdString(wan::build_info_text(wan::build_info())) + QString("Qt %1\n").arg(qVersion());
}

QString MainWindow::queueFile() const {
  const QFileInfo settings(openSettings(options_)->fileName());  // e.g. ~/.config/wan-studio/wan-studio.conf
  return settings.dir().filePath(settings.completeBaseName() + "-queue.json");
}

QString MainWindow::commandLine() const {
  QStringList a;
  const QString beside = QDir(QCoreApplication::applicationDirPath()).filePath("wan");
  a << (QStandardPaths::findExecutable("wan").isEmpty() && QFileInfo(beside).isExecutable() ? beside : QString("wan"))
    << "generate";
  auto arg = [&a](const char* flag, const std::string& value) { a << flag << QString::fromStdString(value); };
  const wan::GenerationRequest r = generation_->request();
  const wan::ModelFiles& m = model_panel_->files();
  if (!m.model_dir.empty()) arg("--model", m.model_dir);
  if (!m.dit.empty()) arg("--dit", m.dit);
  if (!m.t5.empty()) arg("--t5", m.t5);
  if (!m.vae.empty()) arg("--vae", m.vae);
  if (!m.clip.empty()) arg("--clip", m.clip);
  if (!m.tokenizer.empty()) arg("--tokenizer", m.tokenizer);
  for (const wan::LoraFile& l : model_panel_->loras())
    a << (l.expert == wan::LoraExpert::kHighNoise  ? "--lora-high"
          : l.expert == wan::LoraExpert::kLowNoise ? "--lora-low"
                                                   : "--lora")
      << QString::fromStdString(l.path) + ":" + QString::number(l.strength);
  if (model_panel_->loraAllowPartial()) a << "--lora-allow-partial";
  if (model_panel_->fp8Weights() == wan::Fp8Weights::kKeep)
    a << "--fp8-weights"
      << "keep";
  if (!r.image.empty()) arg("--image", r.image);
  arg("--prompt", r.prompt);
  if (!r.negative_prompt.empty()) arg("--negative", r.negative_prompt);
  a << "--width" << QString::number(r.width) << "--height" << QString::number(r.height) << "--frames"
    << QString::number(r.frames);
  if (r.steps) a << "--steps" << QString::number(*r.steps);
  if (r.shift) a << "--shift" << QString::number(*r.shift);
  if (r.guidance_high)  // Wan2.2 A14B: the pair, the low-noise expert's first
    a << "--guidance"
      << QString::number(r.guidance.value_or(r.sampler == wan::SamplerKind::kDistill
                                                 ? wan::kDistillDefaultGuidance
                                                 : wan::expert_defaults(wan::request_task(r)).guidance_low)) +
             "," + QString::number(*r.guidance_high);
  else if (r.guidance)
    a << "--guidance" << QString::number(*r.guidance);
  if (r.boundary) a << "--boundary" << QString::number(*r.boundary);
  if (r.seed >= 0) a << "--seed" << QString::number(r.seed);
  if (r.sampler != wan::SamplerKind::kUniPC) a << "--sampler" << wan::sampler_name(r.sampler);
  if (r.cache.enabled()) a << "--cache" << QString::fromStdString(wan::step_cache_name(r.cache));
  if (!r.denoising_step_list.empty()) {
    QStringList list;
    for (int t : r.denoising_step_list) list << QString::number(t);
    a << "--denoising-step-list" << list.join(",");
  }
  if (gpuRun())
    a << "--device"
      << "cuda";
  a << "--output" << newOutputPath(generation_->outputFolder());
  // Distributed settings: only where they differ from the defaults.
  const wan::DistConfig c = config_->config(), d;
  if (c.world_size != d.world_size) a << "--world-size" << QString::number(c.world_size);
  if (c.context_parallel()) {
    if (c.ulysses_size != 1 || c.ring_size == 1) a << "--ulysses" << QString::number(c.ulysses_size);
    if (c.ring_size != 1) a << "--ring" << QString::number(c.ring_size);
  }
  if (c.cfg_parallel) a << "--cfg-parallel";
  if (c.dit_fsdp) a << "--dit-fsdp";
  if (c.t5_fsdp) a << "--t5-fsdp";
  if (c.t5_cpu) a << "--t5-cpu";
  if (c.idle_expert_on_host) a << "--idle-expert-on-host";
  if ((c.dit_fsdp || c.t5_fsdp) && c.sharding_strategy != d.sharding_strategy)
    a << "--sharding" << wan::sharding_strategy_name(c.sharding_strategy);
  if (gpuRun() && c.backend != d.backend) a << "--backend" << wan::backend_name(c.backend);
  if (c.hang_timeout_seconds != d.hang_timeout_seconds)
    a << "--hang-timeout" << QString::number(c.hang_timeout_seconds);
  QStringList quoted;
  for (const QString& w : a) quoted << shellQuote(w);
  // The CLI refuses an output folder that does not exist (the studio creates its own at Generate): the
  // command creates it first, so it runs as copied.
  const QString folder = generation_->outputFolder();
  const QString mkdir = QDir(folder).exists() ? QString() : "mkdir -p " + shellQuote(folder) + " && ";
  return mkdir + quoted.join(' ');
}

}  // namespace wan_ui
