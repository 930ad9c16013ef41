// wan-studio: the desktop application. Thin: options, the main window, the event loop.
#include <QApplication>
#include <QCommandLineParser>
#include <QDir>
#include <QIcon>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "main_window.h"
#include "screenshot_tour.h"
#include "wan/model_info.h"
#include "wan/version.h"

int main(int argc, char** argv) {
  // Before Qt starts (it needs a display): the versions, and one clear line where there is no display.
  bool help = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--version") == 0) {
      std::printf("%sQt %s\n", wan::build_info_text(wan::build_info()).c_str(), qVersion());
      return 0;
    }
    help = help || std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0;
  }
  auto set = [](const char* name) { return std::getenv(name) && *std::getenv(name); };
  if (!help && !set("DISPLAY") && !set("WAYLAND_DISPLAY") && !set("QT_QPA_PLATFORM")) {
    std::fprintf(stderr,
                 "wan-studio: error: no display (neither DISPLAY nor WAYLAND_DISPLAY is set): run it in a desktop "
                 "session (or under Xvfb), or generate headless with `wan generate`\n");
    return 2;
  }
  // --help prints and exits: without a display it needs no window system (Qt would abort on xcb).
  if (help && !set("DISPLAY") && !set("WAYLAND_DISPLAY") && !set("QT_QPA_PLATFORM"))
    setenv("QT_QPA_PLATFORM", "offscreen", 1);
  QApplication app(argc, argv);
  QApplication::setOrganizationName("wan-studio");
  QApplication::setApplicationName("wan-studio");
  QApplication::setApplicationDisplayName("Wan Studio");
  QApplication::setWindowIcon(QIcon(":/icons/wan-studio.svg"));
  QCommandLineParser parser;
  parser.setApplicationDescription("Wan Studio: multi-GPU Wan2.1 and Wan2.2 text-to-video and image-to-video");
  parser.addHelpOption();
  QCommandLineOption version("version", "Print the versions of the engine, LibTorch, CUDA, NCCL, cuDNN and Qt.");
  parser.addOption(version);
  QCommandLineOption model({"m", "model"}, "Open this model folder.", "folder");
  QCommandLineOption demo("demo", "Open the built-in demo model (created on first use).");
  QCommandLineOption shots("screenshots", "Run the screenshot tour (demo model) and save PNGs into this folder.",
                           "folder");
  parser.addOptions({model, demo, shots});
  parser.process(app);

  wan_ui::StudioOptions options;
  if (parser.isSet(shots)) options.settings_file = QDir::temp().filePath("wan-studio-screenshots.ini");
  wan_ui::MainWindow window(options);
  if (parser.isSet(model))
    window.loadModel(parser.value(model));
  else if (parser.isSet(demo))
    window.loadModel(QString::fromStdString(wan::demo_model_dir()));
  window.show();
  if (parser.isSet(shots)) startScreenshotTour(window, parser.value(shots));
  return app.exec();
}
