#include "video_reader.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libswscale/swscale.h>
}

#include <memory>

namespace wan_ui {
namespace {

QString averror(int code) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(code, buf, sizeof buf);
  return QString::fromUtf8(buf);
}

struct FormatCloser {
  void operator()(AVFormatContext* f) const { avformat_close_input(&f); }
};
struct CodecCloser {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct FrameFree {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct PacketFree {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct SwsFree {
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};

}  // namespace

DecodedVideo readVideo(const QString& path, int max_frames) {
  DecodedVideo out;
  AVFormatContext* raw = nullptr;
  const QByteArray file = path.toUtf8();
  if (int e = avformat_open_input(&raw, file.constData(), nullptr, nullptr); e < 0) {
    out.error = path + ": " + averror(e);
    return out;
  }
  std::unique_ptr<AVFormatContext, FormatCloser> fmt(raw);
  if (int e = avformat_find_stream_info(fmt.get(), nullptr); e < 0) {
    out.error = path + ": " + averror(e);
    return out;
  }
  const int stream = av_find_best_stream(fmt.get(), AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  if (stream < 0) {
    out.error = path + ": no video stream";
    return out;
  }
  AVStream* st = fmt->streams[stream];
  const AVCodec* codec = avcodec_find_decoder(st->codecpar->codec_id);
  if (!codec) {
    out.error = path + ": no decoder for this video codec";
    return out;
  }
  std::unique_ptr<AVCodecContext, CodecCloser> ctx(avcodec_alloc_context3(codec));
  avcodec_parameters_to_context(ctx.get(), st->codecpar);
  if (int e = avcodec_open2(ctx.get(), codec, nullptr); e < 0) {
    out.error = path + ": " + averror(e);
    return out;
  }
  const AVRational rate = st->avg_frame_rate.num > 0 ? st->avg_frame_rate : st->r_frame_rate;
  if (rate.num > 0 && rate.den > 0) out.fps = av_q2d(rate);
  std::unique_ptr<AVFrame, FrameFree> frame(av_frame_alloc());
  std::unique_ptr<AVPacket, PacketFree> packet(av_packet_alloc());
  std::unique_ptr<SwsContext, SwsFree> sws;
  auto receive = [&]() {
    while (avcodec_receive_frame(ctx.get(), frame.get()) == 0) {
      if (!sws)
        sws.reset(sws_getContext(frame->width, frame->height, static_cast<AVPixelFormat>(frame->format), frame->width, frame->height,
                                 AV_PIX_FMT_RGB24, SWS_BILINEAR, nullptr, nullptr, nullptr));
      QImage image(frame->width, frame->height, QImage::Format_RGB888);
      uint8_t* dst[1] = {image.bits()};
      int dst_stride[1] = {static_cast<int>(image.bytesPerLine())};
      sws_scale(sws.get(), frame->data, frame->linesize, 0, frame->height, dst, dst_stride);
      out.frames.push_back(image);
      if (max_frames > 0 && out.frames.size() >= max_frames) return true;
    }
    return false;
  };
  while (av_read_frame(fmt.get(), packet.get()) >= 0) {
    const bool ours = packet->stream_index == stream;
    if (ours) avcodec_send_packet(ctx.get(), packet.get());
    av_packet_unref(packet.get());
    if (ours && receive()) return out;
  }
  avcodec_send_packet(ctx.get(), nullptr);  // drain
  receive();
  if (out.frames.isEmpty()) out.error = path + ": no frames could be decoded";
  return out;
}

}  // namespace wan_ui
