// `wan-studio --screenshots DIR`: drives the window through a real demo-model run (idle, mid-run with
// progress bars and live preview, finished with the player) and saves a screenshot of each state.
// scripts/screenshots.sh runs it under Xvfb.
#pragma once
#include <QString>

namespace wan_ui {
class MainWindow;
}

// Starts the tour; the application quits when it is done (exit code 0) or failed (1).
void startScreenshotTour(wan_ui::MainWindow& window, const QString& dir);
