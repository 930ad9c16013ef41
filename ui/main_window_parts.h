// Pieces the main window's files share (main_window.cpp: state, runs, queue, settings;
// main_window_layout.cpp: panels, menus, command line). Internal to ui/.
#pragma once
#include <QDateTime>
#include <QDir>
#include <QEvent>
#include <QFileInfo>
#include <QGroupBox>
#include <QLabel>
#include <QScrollArea>
#include <QScrollBar>
#include <QSettings>
#include <QTabWidget>
#include <QVBoxLayout>
#include <memory>

#include "main_window.h"

namespace wan_ui {
namespace main_window_detail {

constexpr const char* kAuto = "Auto";

inline std::unique_ptr<QSettings> openSettings(const StudioOptions& o) {
  if (!o.settings_file.isEmpty()) return std::make_unique<QSettings>(o.settings_file, QSettings::IniFormat);
  return std::make_unique<QSettings>();
}

inline QGroupBox* group(const QString& title, QWidget* content) {
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
inline QLabel* wrappingLabel(const QString& name) {
  auto* l = new QLabel;
  l->setObjectName(name);
  l->setWordWrap(true);
  l->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
  return l;
}

// A shell word: as is when it is plain, else in single quotes (a quote inside becomes '\'').
inline QString shellQuote(const QString& word) {
  static const QRegularExpression plain("^[A-Za-z0-9_@%+=:,./-]+$");
  if (plain.match(word).hasMatch()) return word;
  QString q = word;
  q.replace("'", "'\\''");
  return "'" + q + "'";
}

// A new video file in `folder`: wan-<date>-<time>.mp4 (-2, -3, ... when taken).
inline QString newOutputPath(const QString& folder) {
  const QString stem = "wan-" + QDateTime::currentDateTime().toString("yyyyMMdd-hhmmss");
  QString path = QDir(folder).filePath(stem + ".mp4");
  for (int n = 2; QFileInfo::exists(path) ||
                  QFileInfo::exists(QDir(folder).filePath(QFileInfo(path).completeBaseName() + ".json"));
       ++n)
    path = QDir(folder).filePath(QString("%1-%2.mp4").arg(stem).arg(n));
  return path;
}

}  // namespace main_window_detail
}  // namespace wan_ui
