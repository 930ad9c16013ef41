#include <filesystem>
#include <memory>
#include <vector>

#include "wan/video_decode.h"

#if WAN_WITH_FFMPEG
#include "video/av_handles.h"
#include "video/av_log.h"
#include "video/png_reader.h"
#endif

#include "wan/error.h"

namespace wan {

#if WAN_WITH_FFMPEG
namespace {

Error unreadable(const std::string& path, const std::string& why) {
  const std::string said = av::last_log_error();
  return Error(ErrorCode::kCorruptFile,
               path + ": cannot be decoded (" + why + (said.empty() ? "" : "; FFmpeg: " + said) + ")");
}

}  // namespace

double decode_rgb_frames(const std::string& path, int max_frames, const RgbFrameFn& on_frame) {
  if (!std::filesystem::exists(path)) throw Error(ErrorCode::kFileNotFound, path + ": no such file");
  if (!std::filesystem::is_regular_file(path))
    throw Error(ErrorCode::kInvalidArgument, path + " is not a regular file (a folder, pipe or device)");
  av::capture_log();
  AVFormatContext* raw = nullptr;
  if (int e = avformat_open_input(&raw, path.c_str(), nullptr, nullptr); e < 0)
    throw unreadable(path, av::error_text(e));
  av::Input fmt(raw);
  // find_stream_info decodes a first frame of each stream: its decoders get the pixel bound too, so a
  // small file whose header claims a huge picture fails there instead of allocating it.
  const std::string max_pixels = std::to_string(kMaxPicturePixels);
  std::vector<AVDictionary*> stream_options(fmt->nb_streams, nullptr);
  for (AVDictionary*& d : stream_options) av_dict_set(&d, "max_pixels", max_pixels.c_str(), 0);
  const int found = avformat_find_stream_info(fmt.get(), stream_options.empty() ? nullptr : stream_options.data());
  for (AVDictionary*& d : stream_options) av_dict_free(&d);
  if (found < 0) throw unreadable(path, av::error_text(found));
  const int stream = av_find_best_stream(fmt.get(), AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  if (stream < 0) throw unreadable(path, "no video stream or picture in it");
  AVStream* st = fmt->streams[stream];
  const AVCodec* codec = avcodec_find_decoder(st->codecpar->codec_id);
  if (!codec) throw unreadable(path, "no decoder for its format");
  av::CodecContext ctx(avcodec_alloc_context3(codec));
  avcodec_parameters_to_context(ctx.get(), st->codecpar);
  ctx->max_pixels = static_cast<std::int64_t>(kMaxPicturePixels);
  if (int e = avcodec_open2(ctx.get(), codec, nullptr); e < 0) throw unreadable(path, av::error_text(e));
  check_picture_pixels(path, ctx->width, ctx->height);  // from the header, before a frame is decoded
  double fps = 0;
  const AVRational rate = st->avg_frame_rate.num > 0 ? st->avg_frame_rate : st->r_frame_rate;
  if (rate.num > 0 && rate.den > 0 && st->nb_frames != 1) fps = av_q2d(rate);

  av::Frame frame(av_frame_alloc());
  av::Packet packet(av_packet_alloc());
  av::Sws sws;
  std::vector<std::uint8_t> rgb;
  int decoded = 0;
  auto receive = [&]() {  // true once max_frames were delivered
    while (avcodec_receive_frame(ctx.get(), frame.get()) == 0) {
      const int w = frame->width, h = frame->height;
      check_picture_pixels(path, w, h);
      if (!sws)
        // Exact for 8-bit RGB pictures (a copy that drops alpha); YUV through accurate rounding and
        // full chroma interpolation.
        sws.reset(sws_getContext(w, h, static_cast<AVPixelFormat>(frame->format), w, h, AV_PIX_FMT_RGB24,
                                 SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT | SWS_FULL_CHR_H_INP, nullptr,
                                 nullptr, nullptr));
      if (!sws) throw unreadable(path, "unsupported pixel format");
      rgb.resize(static_cast<std::size_t>(w) * h * 3);
      uint8_t* dst[1] = {rgb.data()};
      int dst_stride[1] = {w * 3};
      sws_scale(sws.get(), frame->data, frame->linesize, 0, h, dst, dst_stride);
      on_frame(rgb.data(), w, h);
      if (++decoded == max_frames) return true;
    }
    return false;
  };
  while (av_read_frame(fmt.get(), packet.get()) >= 0) {
    const bool ours = packet->stream_index == stream;
    if (ours) avcodec_send_packet(ctx.get(), packet.get());
    av_packet_unref(packet.get());
    if (ours && receive()) return fps;
  }
  avcodec_send_packet(ctx.get(), nullptr);  // drain
  receive();
  if (decoded == 0) throw unreadable(path, "no frame could be decoded");
  return fps;
}

#else

double decode_rgb_frames(const std::string& path, int, const RgbFrameFn&) {
  throw Error(ErrorCode::kUnsupported,
              path +
                  ": this build has no FFmpeg (-DWAN_WITH_FFMPEG=OFF), so it cannot decode videos "
                  "or pictures other than PNG; rebuild with FFmpeg");
}

#endif

}  // namespace wan
