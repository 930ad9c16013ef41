// Running `wan` as a user does, for the process tests (WAN_CLI_PATH is the built executable).
#pragma once
#include <QDir>
#include <QProcess>
#include <QString>
#include <QStringList>
#include <nlohmann/json.hpp>

#include "test_util.h"
#include "weights/file_util.h"
#include "weights/safetensors.h"

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
  return {p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1, p.readAllStandardOutput(),
          p.readAllStandardError()};
}

// The error message is the last line on stderr (progress lines come before it).
inline QString last_line(const QString& text) { return text.trimmed().section('\n', -1); }

inline QStringList files_in(const QString& dir) {
  return QDir(dir).entryList(QDir::AllEntries | QDir::NoDotAndDotDot | QDir::Hidden);
}

// The settings of the t2v pipeline fixture's run.json as `wan generate` flags (no --dtype).
inline QStringList t2v_fixture_args(const QString& model_dir) {
  const nlohmann::json run = nlohmann::json::parse(wan::read_text_file(golden("t2v_pipeline_small") + "/run.json"));
  auto num = [&](const char* k) { return QString::number(run.at(k).get<double>()); };
  // clang-format off
  return {"generate", "--model", model_dir,
          "--prompt", QString::fromStdString(run.at("prompt").get<std::string>()),
          "--negative", QString::fromStdString(run.at("negative_prompt").get<std::string>()),
          "--width", num("width"), "--height", num("height"), "--frames", num("frames"), "--steps", num("steps"),
          "--shift", num("shift"), "--guidance", num("guide_scale"), "--seed", num("seed"),
          "--sampler", QString::fromStdString(run.at("solver").get<std::string>())};
  // clang-format on
}

// Relative L2 error of a latent saved with --save-latent against the fixture's final latent.
inline double t2v_fixture_latent_error(const QString& path) {
  auto written = wan::SafetensorsFile::open(path.toStdString());
  auto io = wan::SafetensorsFile::open(golden("t2v_pipeline_small") + "/io.safetensors");
  return rel_l2(written->view("latent"), io->view("final_latent"));
}

}  // namespace wan_test
