// Running `wan` as a user does, for the process tests (WAN_CLI_PATH is the built executable).
#pragma once
#include <QDir>
#include <QProcess>
#include <QString>
#include <QStringList>

namespace wan_test {

struct Run {
  int code = -1;  // exit code; -1 when it crashed or timed out
  QString out, err;
};

inline Run run_wan(const QStringList& args) {
  QProcess p;
  p.start(WAN_CLI_PATH, args);
  if (!p.waitForFinished(300000)) {
    p.kill();
    return {};
  }
  return {p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1, p.readAllStandardOutput(), p.readAllStandardError()};
}

// The error message is the last line on stderr (progress lines come before it).
inline QString last_line(const QString& text) { return text.trimmed().section('\n', -1); }

inline QStringList files_in(const QString& dir) {
  return QDir(dir).entryList(QDir::AllEntries | QDir::NoDotAndDotDot | QDir::Hidden);
}

}  // namespace wan_test
