// What the studio's test executables share: a run small enough for this machine (demo model, world
// size 2, gloo), a long one to interrupt, a window with its own temporary folders, and the checks for
// leftover processes and shared-memory segments.
#pragma once
#include <signal.h>

#include <QAction>
#include <QCoreApplication>
#include <QDir>
#include <QTemporaryDir>
#include <QtGlobal>
#include <vector>

#include "main_window.h"
#include "wan/job.h"
#include "wan/model_info.h"
#include "wan/progress_board.h"

namespace studio_test {

// Points the studio at the worker built with the tests and at this machine's truth (no GPU, whatever
// nvidia-smi says); false when the demo model cannot be found.
inline bool initStudioTest() {
  qputenv("WAN_WORKER", WAN_WORKER_PATH);
  qputenv("WAN_STUDIO_GPUS", "0:0");
  return !wan::demo_model_dir().empty();
}

// The progress boards of this test process's runs (RunSupervisor names them "studio-<pid>-<time>"):
// other test programs that run at the same time (ctest -j 2) have boards of their own.
inline int studioSegments() {
  const QString mine = QString("wan-studio-studio-%1-*").arg(QCoreApplication::applicationPid());
  return QDir("/dev/shm").entryList({mine}, QDir::Files).size();
}
// The window's menu action named `name` (its objectName), or nullptr.
inline QAction* action(const wan_ui::MainWindow& w, const QString& name) { return w.findChild<QAction*>(name); }
inline bool processAlive(qint64 pid) { return pid > 0 && kill(static_cast<pid_t>(pid), 0) == 0; }

inline wan::GenerationRequest smallRequest(const QString& out_dir) {
  wan::GenerationRequest r;
  r.prompt = "a lighthouse in a storm";
  r.width = 128;
  r.height = 128;
  r.frames = 5;
  r.steps = 3;
  r.seed = 7;
  r.device = wan::Device{};
  r.model.model_dir = wan::demo_model_dir();
  r.output = QDir(out_dir).filePath("clip.mp4").toStdString();
  return r;
}

// A window of its own: presets, settings file and output folder in temporary folders.
struct WindowDirs {
  QTemporaryDir user, settings, out;
  wan_ui::StudioOptions options() const {
    wan_ui::StudioOptions o;
    o.builtin_presets = WAN_PRESETS_DIR;
    o.user_presets = user.path();
    o.settings_file = settings.filePath("studio.ini");
    return o;
  }
};

// A run long enough (200 steps) to be interrupted while it samples.
inline wan::GenerationRequest longRequest(const QString& out_dir) {
  wan::GenerationRequest r = smallRequest(out_dir);
  r.steps = 200;
  return r;
}

inline bool sampling(const std::vector<wan::RankStatus>& ranks, int rank, int min_step = 0) {
  return static_cast<int>(ranks.size()) > rank && ranks[rank].phase == static_cast<int>(wan::Phase::kSampling) &&
         ranks[rank].step >= min_step;
}

inline wan::DistConfig world2() {
  wan::DistConfig c;
  c.world_size = 2;
  c.backend = wan::resolve_backend(c, wan::Device{});
  c.use_context_parallel = true;
  c.ulysses_size = 2;
  return c;
}

inline wan::Job job(const wan::GenerationRequest& request, const wan::DistConfig& config) {
  wan::Job j;
  j.request = request;
  j.config = config;
  return j;
}

}  // namespace studio_test
