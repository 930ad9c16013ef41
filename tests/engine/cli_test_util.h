// Running `wan` as a user does, for the process tests (WAN_CLI_PATH is the built executable).
#pragma once
#include <QDir>
#include <QElapsedTimer>
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

// Everything in `dir`: hidden files, and (QDir::System) dangling links, FIFOs and sockets too.
inline QStringList files_in(const QString& dir) {
  return QDir(dir).entryList(QDir::AllEntries | QDir::NoDotAndDotDot | QDir::Hidden | QDir::System);
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

// The t2v pipeline fixture's folder.
inline QString fixture() { return QString::fromStdString(golden("t2v_pipeline_small")); }

// The fixture's settings in float32 (the reference's dtype).
inline QStringList fixture_args(const QString& model_dir) {
  return t2v_fixture_args(model_dir) << "--dtype"
                                     << "fp32";
}

// Starts `wan args` and reads its stderr until `needle` appears (at most 120 s, or until it ends);
// returns what it read.
inline QString start_until(QProcess& p, const QStringList& args, const QString& needle) {
  p.start(WAN_CLI_PATH, args);
  QString err;
  if (!p.waitForStarted()) return err;
  QElapsedTimer timer;
  timer.start();
  while (!err.contains(needle) && timer.elapsed() < 120000 && p.state() == QProcess::Running) {
    p.waitForReadyRead(100);
    err += p.readAllStandardError();
  }
  return err;
}

// ffprobe's view of a video: frames, width, height, fps.
inline QString probe(const QString& path) {
  QProcess p;
  p.start("ffprobe", {"-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                      "stream=nb_read_frames,width,height,r_frame_rate,codec_name,pix_fmt", "-of", "csv=p=0", path});
  if (!p.waitForFinished(60000) || p.exitCode() != 0) return "ffprobe failed: " + p.readAllStandardError();
  return QString(p.readAllStandardOutput()).trimmed();
}

}  // namespace wan_test
