#include "progress_text.h"

#include "wan/generation.h"

namespace wan_ui {

QString rankStatusText(int rank, const wan::RankStatus& s) {
  const auto phase = static_cast<wan::Phase>(s.phase);
  QString what, unit = "step";
  bool counted = false;  // "k/N" means something in this phase
  switch (phase) {
    case wan::Phase::kNone:
      what = "starting";
      break;
    case wan::Phase::kStarting:
      what = "checking the settings and model files";
      break;
    case wan::Phase::kLoading:
      what = "loading the DiT";
      break;
    case wan::Phase::kEncodingText:
      what = s.step >= 1 && s.total >= 2 ? "encoding the start picture" : "encoding the prompt";
      break;
    case wan::Phase::kSampling:
      what = "sampling";
      counted = s.total > 0;
      if (counted) what = QString("sampling step %1/%2").arg(s.step).arg(s.total);
      break;
    case wan::Phase::kDecoding:
      unit = "frame";
      counted = s.total > 0;
      what = counted ? QString("decoding frame %1/%2").arg(s.step).arg(s.total) : QString("decoding");
      break;
    case wan::Phase::kWriting:
      what = "writing the video";
      break;
    case wan::Phase::kDone:
      what = "done";
      break;
    case wan::Phase::kFailed:
      what = "failed";
      break;
  }
  if (s.state == wan::RankState::kFailed && phase != wan::Phase::kFailed) what = "failed while " + what;
  if (s.state == wan::RankState::kCancelled) what = "cancelled";
  if (s.state == wan::RankState::kDone && phase != wan::Phase::kDone) what = "done";
  QString text = QString("rank %1: %2").arg(rank).arg(what);
  if (counted && s.seconds_per_step > 0 && s.state == wan::RankState::kRunning)
    text += QString(" · %1 s/%2").arg(s.seconds_per_step, 0, 'f', s.seconds_per_step < 10 ? 1 : 0).arg(unit);
  if (s.memory_bytes > 0)
    text += QString(" · %1 GiB").arg(static_cast<double>(s.memory_bytes) / (1ull << 30), 0, 'f', 2);
  if (s.state == wan::RankState::kFailed && !s.error.empty()) text += " · " + QString::fromStdString(s.error);
  return text;
}

}  // namespace wan_ui
