// The studio's main window: model, presets and distributed settings on the left; generation panel,
// per-rank progress, live preview, player and log in the middle; memory estimator and history on the
// right. Settings persist through QSettings.
#pragma once
#include <QMainWindow>
#include <QPointer>
#include <functional>
#include <memory>
#include <optional>

#include "wan/model_info.h"
#include "wan/system_info.h"

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
  GenerationForm* generationForm() const { return generation_; }
  EstimateTableModel* estimateModel() const { return estimate_; }
  HistoryModel* historyModel() const { return history_; }
  RunSupervisor* supervisor() const { return supervisor_; }
  VideoPlayer* player() const { return player_; }
  QTabWidget* tabs() const { return tabs_; }
  QString lastMessage() const { return last_message_; }
  // How the window asks before it deletes or stops a run (default: a Yes/No message box). Tests answer.
  void setConfirm(std::function<bool(const QString& title, const QString& question)> confirm) {
    confirm_ = std::move(confirm);
  }
  bool previewShown() const;
  int progressBarCount() const;

  bool loadModel(const QString& folder);  // false: the message is shown in the model panel
  bool applyPreset(const QString& name);  // "Auto" included
  QStringList presetNames() const;

 public slots:
  void generate();
  void cancel();

 signals:
  void runFinished(int exit_code);

 protected:
  void closeEvent(QCloseEvent* event) override;

 private:
  QWidget* buildPresetPanel();
  QWidget* buildRunPanel();
  QWidget* buildSidePanel();
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
  VideoPlayer* player_;
  QTabWidget* tabs_;
  QLabel *preview_, *eta_, *status_;
  QComboBox* presets_box_;
  QPushButton *generate_, *cancel_;
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
