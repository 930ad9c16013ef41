// wan-studio: the desktop application. Thin: options, the main window, the event loop.
#include <QApplication>
#include <QCommandLineParser>
#include <QDir>
#include <QIcon>

#include "main_window.h"
#include "screenshot_tour.h"
#include "wan/model_info.h"

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  QApplication::setOrganizationName("wan-studio");
  QApplication::setApplicationName("wan-studio");
  QApplication::setApplicationDisplayName("Wan Studio");
  QApplication::setWindowIcon(QIcon(":/icons/wan-studio.svg"));
  QCommandLineParser parser;
  parser.setApplicationDescription("Wan Studio: multi-GPU Wan2.1 text-to-video and image-to-video");
  parser.addHelpOption();
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
  window.resize(1600, 980);
  window.show();
  if (parser.isSet(shots)) startScreenshotTour(window, parser.value(shots));
  return app.exec();
}
