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
#include <numeric>

#include "config_form.h"
#include "estimate_table_model.h"
#include "generation_form.h"
#include "history_model.h"
#include "job_queue.h"
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

// A column that scrolls when the window is small: its size hint is its content's (a plain QScrollArea
// caps it), so on a large screen nothing scrolls; its minimum is small, so 1280x720 fits.
class ColumnScrollArea : public QScrollArea {
 public:
  ColumnScrollArea(QWidget* content, int min_width, int hint_width = 0)
      : min_width_(min_width), hint_width_(hint_width) {
    setWidget(content);
    setWidgetResizable(true);
    setFrameShape(QFrame::NoFrame);
    setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
  }
  QSize sizeHint() const override {
    const QSize content = widget()->sizeHint();
    return {std::max(hint_width_, content.width() + verticalScrollBar()->sizeHint().width()), content.height()};
  }
  QSize minimumSizeHint() const override {
    return {std::max(min_width_, widget()->minimumSizeHint().width() + verticalScrollBar()->sizeHint().width()), 120};
  }

 protected:
  bool eventFilter(QObject* o, QEvent* e) override {
    // The content grew or shrank (rank bars added, a message shown): the column's hint changed with it.
    if (o == widget() && e->type() == QEvent::LayoutRequest) updateGeometry();
    return QScrollArea::eventFilter(o, e);
  }

 private:
  int min_width_, hint_width_;
};

// The run tabs ask for little height: on a low screen the form above keeps its rows, the preview shrinks.
class CompactTabs : public QTabWidget {
 public:
  QSize sizeHint() const override {
    const QSize s = QTabWidget::sizeHint();
    return {s.width(), std::min(s.height(), minimumSizeHint().height() + 60)};
  }
};

// A label whose text may be long (status, reasons): it wraps or elides instead of widening the window.
QLabel* wrappingLabel(const QString& name) {
  auto* l = new QLabel;
  l->setObjectName(name);
  l->setWordWrap(true);
  l->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
  return l;
}

// A shell word: as is when it is plain, else in single quotes (a quote inside becomes '\'').
QString shellQuote(const QString& word) {
  static const QRegularExpression plain("^[A-Za-z0-9_@%+=:,./-]+$");
  if (plain.match(word).hasMatch()) return word;
  QString q = word;
  q.replace("'", "'\\''");
  return "'" + q + "'";
}

// A new video file in `folder`: wan-<date>-<time>.mp4 (-2, -3, ... when taken).
QString newOutputPath(const QString& folder) {
  const QString stem = "wan-" + QDateTime::currentDateTime().toString("yyyyMMdd-hhmmss");
  QString path = QDir(folder).filePath(stem + ".mp4");
  for (int n = 2; QFileInfo::exists(path) ||
                  QFileInfo::exists(QDir(folder).filePath(QFileInfo(path).completeBaseName() + ".json"));
       ++n)
    path = QDir(folder).filePath(QString("%1-%2.mp4").arg(stem).arg(n));
  return path;
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
  queue_ = new JobQueueModel(this);
  player_ = new VideoPlayer;

  auto* left = new QWidget;
  auto* left_layout = new QVBoxLayout(left);
  model_panel_ = new ModelPanel(system_);
  connect(model_panel_, &ModelPanel::modelChanged, this, &MainWindow::onModelChanged);
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
  if (!r.image.empty()) arg("--image", r.image);
  arg("--prompt", r.prompt);
  if (!r.negative_prompt.empty()) arg("--negative", r.negative_prompt);
  a << "--width" << QString::number(r.width) << "--height" << QString::number(r.height) << "--frames"
    << QString::number(r.frames);
  if (r.steps) a << "--steps" << QString::number(*r.steps);
  if (r.shift) a << "--shift" << QString::number(*r.shift);
  if (r.guidance) a << "--guidance" << QString::number(*r.guidance);
  if (r.seed >= 0) a << "--seed" << QString::number(r.seed);
  if (r.sampler != wan::SamplerKind::kUniPC) a << "--sampler" << wan::sampler_name(r.sampler);
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

QStringList MainWindow::presetNames() const {
  QStringList out = {kAuto};
  out << presets_->names();
  return out;
}

void MainWindow::refreshPresets(const QString& select) {
  const QSignalBlocker block(presets_box_);  // listing is not choosing: nothing is applied here
  presets_box_->clear();
  presets_box_->addItems(presetNames());
  for (int i = 0; i < presets_box_->count(); ++i) {
    const QString name = presets_box_->itemText(i);
    presets_box_->setItemData(
        i, name == kAuto ? QString("the fastest layout for this machine that fits") : presets_->description(name),
        Qt::ToolTipRole);
  }
  if (!select.isEmpty()) presets_box_->setCurrentText(select);
  updatePresetState();
}

QString MainWindow::presetState() const { return preset_state_->text(); }

void MainWindow::updatePresetState() {
  if (!preset_state_ || !presets_box_) return;
  const QString name = presets_box_->currentText();
  preset_description_->setText(name == kAuto ? "Auto: the fastest layout for this machine's GPUs that the memory "
                                               "estimator says fits (CFG parallel and Ulysses first, then sharding)."
                                             : presets_->description(name));
  const bool modified = !preset_applied_.isEmpty() &&
                        preset_applied_ != QString::fromStdString(wan::dist_config_to_json(config_->config()));
  preset_state_->setText(modified ? "modified: the settings differ from " + name + " (Reapply restores it)"
                                  : QString());
  preset_state_->setVisible(modified);
  const bool fixed = name == kAuto || presets_->isBuiltIn(name);
  for (QPushButton* b : {rename_preset_, remove_preset_}) {
    b->setEnabled(!fixed);
    b->setToolTip(fixed ? "Built-in presets cannot be renamed or deleted: \"Save as…\" makes a copy of your own."
                        : QString());
  }
}

bool MainWindow::gpuRun() const { return !system_.gpus.empty(); }
wan::Device MainWindow::device() const { return wan::parse_device_name(gpuRun() ? "cuda" : "cpu"); }

bool MainWindow::applyPreset(const QString& name) {
  const wan::DistConfig before = config_->config();
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
    const bool overlay = presets_->isOverlay(name);
    try {
      // A preset without a world size (memory-efficient) changes the current layout; the others replace it.
      c = presets_->load(name, overlay ? before : wan::DistConfig{});
    } catch (const wan::Error& e) {
      last_message_ = e.what();
      status_->setText(last_message_);
      return false;
    }
    last_message_ = "Preset " + name + " applied (Edit > Undo preset brings the settings before back).";
    if (overlay && c.world_size == 1 && (c.use_fsdp || c.dit_fsdp || c.t5_fsdp)) {
      // FSDP shards across ranks: on one process it would be an invalid layout. The rest applies.
      c.use_fsdp = c.dit_fsdp = c.t5_fsdp = false;
      last_message_ = "Preset " + name + " applied without FSDP, which needs 2 or more ranks (world size is 1).";
    }
  }
  c.backend = wan::resolve_backend(c, device());  // no GPU here: CPU processes over gloo
  const int heads = model_panel_->info() ? model_panel_->info()->dims.num_heads : 0;
  if (c.context_parallel() && heads > 0 && heads % c.ulysses_size != 0) {
    // The preset's Ulysses size does not divide this model's heads: the rest of the split goes to the ring
    // (the same world size and speed class; what the validation message advises).
    const int ulysses = std::gcd(c.ulysses_size, heads);
    last_message_ += QString(" Ulysses %1 does not divide the model's %2 heads: Ulysses %3 x ring %4 instead.")
                         .arg(c.ulysses_size)
                         .arg(heads)
                         .arg(ulysses)
                         .arg(c.ring_size * (c.ulysses_size / ulysses));
    c.ring_size *= c.ulysses_size / ulysses;
    c.ulysses_size = ulysses;
  }
  preset_undo_.append({presets_box_->property("appliedName").toString(), before});
  if (undo_preset_action_) undo_preset_action_->setEnabled(true);
  {
    const QSignalBlocker block(presets_box_);
    presets_box_->setCurrentText(name);
  }
  presets_box_->setProperty("appliedName", name);
  config_->setConfig(c);
  preset_applied_ = QString::fromStdString(wan::dist_config_to_json(config_->config()));
  updatePresetState();
  status_->setText(last_message_);
  return true;
}

bool MainWindow::undoPreset() {
  if (preset_undo_.isEmpty()) return false;
  const PresetUndo u = preset_undo_.takeLast();
  {
    const QSignalBlocker block(presets_box_);
    presets_box_->setCurrentText(u.name.isEmpty() ? QString(kAuto) : u.name);
  }
  presets_box_->setProperty("appliedName", u.name);
  config_->setConfig(u.config);
  preset_applied_.clear();  // the settings before were not necessarily that preset's
  if (!u.name.isEmpty()) {
    try {
      if (u.name != kAuto && !presets_->isOverlay(u.name)) {
        wan::DistConfig p = presets_->load(u.name);
        p.backend = wan::resolve_backend(p, device());
        preset_applied_ = QString::fromStdString(wan::dist_config_to_json(p));
      }
    } catch (const wan::Error&) {
    }
  }
  updatePresetState();
  if (undo_preset_action_) undo_preset_action_->setEnabled(!preset_undo_.isEmpty());
  last_message_ = "The distributed settings before the preset are back.";
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
  updateTokenCounter();
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
