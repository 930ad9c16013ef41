// The studio's main window: model, presets and distributed settings on the left; generation panel,
// per-rank progress, live preview, player, log and job queue in the middle; memory estimator and
// history on the right (each column scrolls; the window works from 1280x720 up). Menus File, Edit,
// View, Help hold every action with its shortcut. Settings persist through QSettings; the job queue in
// <settings name>-queue.json beside the settings file.
#pragma once
#include <QMainWindow>
#include <QPointer>
#include <functional>
#include <memory>
#include <optional>

#include "wan/dist_config.h"
#include "wan/job.h"
#include "wan/model_info.h"
#include "wan/system_info.h"

class QAction;
class QComboBox;
class QLabel;
class QLineEdit;
class QListView;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;
class QTabWidget;
class QTableView;
class QVBoxLayout;

namespace wan_ui {

class ConfigForm;
class EstimateTableModel;
class GenerationForm;
class HistoryModel;
class JobQueueModel;
class ModelPanel;
class PresetStore;
class RunSupervisor;
class VideoPlayer;

struct StudioOptions {
  QString builtin_presets = ":/presets";
  QString user_presets;   // empty: PresetStore::defaultUserDir()
  QString settings_file;  // empty: the platform's QSettings location
};

class MainWindow : public QMainWindow {
  Q_OBJECT
 public:
  explicit MainWindow(const StudioOptions& options = {}, QWidget* parent = nullptr);
  ~MainWindow() override;

  // For tests and the screenshot script.
  ConfigForm* configForm() const { return config_; }
  ModelPanel* modelPanel() const { return model_panel_; }
  GenerationForm* generationForm() const { return generation_; }
  EstimateTableModel* estimateModel() const { return estimate_; }
  HistoryModel* historyModel() const { return history_; }
  RunSupervisor* supervisor() const { return supervisor_; }
  VideoPlayer* player() const { return player_; }
  QTabWidget* tabs() const { return tabs_; }
  JobQueueModel* queue() const { return queue_; }
  QString lastMessage() const { return last_message_; }
  // The `wan generate ...` command of the current form, distributed settings and model (File > Copy
  // command line); distributed flags only where they differ from the defaults.
  QString commandLine() const;
  QString presetState() const;  // "" or "modified: ..." next to the preset box
  QString queueFile() const;    // <settings name>-queue.json beside the settings file
  static QString aboutText();   // Help > About: the engine's, LibTorch's, CUDA's, NCCL's, cuDNN's and Qt's versions
  // How the window asks before it deletes or stops a run (default: a Yes/No message box). Tests answer.
  void setConfirm(std::function<bool(const QString& title, const QString& question)> confirm) {
    confirm_ = std::move(confirm);
  }
  bool previewShown() const;
  int progressBarCount() const;

  bool loadModel(const QString& folder);  // false: the message is shown in the model panel
  // Applies a preset ("Auto" included) and selects it; the settings before can be restored with
  // undoPreset() (Edit > Undo preset).
  bool applyPreset(const QString& name);
  bool undoPreset();
  QStringList presetNames() const;

 public slots:
  void generate();
  void cancel();
  void addToQueue();  // the current form and settings as a job at the end of the queue
  void runQueue();    // runs the pending jobs in order; a failed one is marked and the queue goes on

 signals:
  void runFinished(int exit_code);

 protected:
  void closeEvent(QCloseEvent* event) override;

 private:
  QWidget* buildPresetPanel();
  QWidget* buildRunPanel();
  QWidget* buildSidePanel();
  QWidget* buildQueuePanel();
  void buildMenus();
  // The job of the current form (model loaded if needed); nullopt with last_message_ set when it cannot run.
  std::optional<wan::Job> currentJob();
  bool startJob(wan::Job job, const QString& folder);  // picks the output file, starts the supervisor
  void runNextQueued();
  void updatePresetState();
  void updateTokenCounter();
  void updateDistillHint();  // the generation form's "looks step-distilled" line, from the model and LoRAs
  void refreshEstimate();
  void onModelChanged();
  void refreshPresets(const QString& select = {});
  void onRanksUpdated();
  void onFinished(int exit_code, const QString& message, const QString& video_path);
  void setRunning(bool running);
  void restoreSettings();
  void saveSettings() const;
  bool gpuRun() const;
  wan::Device device() const;
  bool confirm(const QString& title,
               const QString& question);  // where the ranks run: a GPU (each rank its own) with GPUs, else the CPU

  StudioOptions options_;
  wan::SystemInfo system_;
  std::unique_ptr<PresetStore> presets_;
  ModelPanel* model_panel_;
  ConfigForm* config_;
  GenerationForm* generation_;
  EstimateTableModel* estimate_;
  HistoryModel* history_;
  RunSupervisor* supervisor_;
  JobQueueModel* queue_;
  QListView* queue_view_;
  bool queue_running_ = false;
  int queue_row_ = -1;  // the queued job running now
  // The job last started and its folder: started again with force when the user says "start anyway".
  std::optional<std::pair<wan::Job, QString>> started_;
  struct PresetUndo {
    QString name;
    wan::DistConfig config;
  };
  QList<PresetUndo> preset_undo_;
  QString preset_applied_;  // the config (JSON) the selected preset gave; "" none
  QLabel *preset_state_, *preset_description_, *generate_reason_;
  QPushButton *rename_preset_, *remove_preset_;
  QAction* undo_preset_action_ = nullptr;
  VideoPlayer* player_;
  QTabWidget* tabs_;
  QLabel *preview_, *eta_, *status_;
  QComboBox* presets_box_;
  QPushButton *generate_, *cancel_, *queue_add_;
  QVBoxLayout* ranks_layout_;
  QList<QProgressBar*> rank_bars_;
  std::function<bool(const QString&, const QString&)> confirm_;
  QPlainTextEdit* log_;
  QTableView* estimate_view_;
  QListView* history_view_;
  QString last_message_;
  qint64 run_started_ms_ = 0;
};

}  // namespace wan_ui
