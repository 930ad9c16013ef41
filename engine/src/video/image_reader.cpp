#include "video/image_reader.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <vector>

#if WAN_WITH_FFMPEG
extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libswscale/swscale.h>
}
#endif

#include "video/png_reader.h"
#include "wan/error.h"
#include "weights/file_util.h"

namespace wan {

namespace {

// PNG files are decoded by the engine itself (exact, and without FFmpeg); others by FFmpeg.
bool read_png_if_png(const std::string& path, Rgb8Video* out) {
  if (!std::filesystem::is_regular_file(path)) throw Error(ErrorCode::kFileNotFound, path + ": no such picture file");
  std::ifstream in(path, std::ios::binary);
  std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) throw Error(ErrorCode::kIo, path + ": cannot read the picture file");
  if (!is_png(bytes)) return false;
  *out = decode_png(bytes, path);
  return true;
}

}  // namespace

#if WAN_WITH_FFMPEG
namespace {

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

Error bad_picture(const std::string& path, const std::string& why) {
  return Error(ErrorCode::kCorruptFile, path + ": cannot read the picture (" + why + "); use a PNG or JPEG file");
}

std::string averror(int code) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(code, buf, sizeof buf);
  return buf;
}

}  // namespace

Rgb8Video read_image(const std::string& path) {
  Rgb8Video png;
  if (read_png_if_png(path, &png)) return png;
  AVFormatContext* raw = nullptr;
  if (int e = avformat_open_input(&raw, path.c_str(), nullptr, nullptr); e < 0) throw bad_picture(path, averror(e));
  std::unique_ptr<AVFormatContext, FormatCloser> fmt(raw);
  if (int e = avformat_find_stream_info(fmt.get(), nullptr); e < 0) throw bad_picture(path, averror(e));
  const int stream = av_find_best_stream(fmt.get(), AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  if (stream < 0) throw bad_picture(path, "no image in it");
  const AVCodec* codec = avcodec_find_decoder(fmt->streams[stream]->codecpar->codec_id);
  if (!codec) throw bad_picture(path, "no decoder for its format");
  std::unique_ptr<AVCodecContext, CodecCloser> ctx(avcodec_alloc_context3(codec));
  avcodec_parameters_to_context(ctx.get(), fmt->streams[stream]->codecpar);
  if (int e = avcodec_open2(ctx.get(), codec, nullptr); e < 0) throw bad_picture(path, averror(e));
  std::unique_ptr<AVFrame, FrameFree> frame(av_frame_alloc());
  std::unique_ptr<AVPacket, PacketFree> packet(av_packet_alloc());
  bool got = false;
  while (!got && av_read_frame(fmt.get(), packet.get()) >= 0) {
    if (packet->stream_index == stream && avcodec_send_packet(ctx.get(), packet.get()) >= 0)
      got = avcodec_receive_frame(ctx.get(), frame.get()) == 0;
    av_packet_unref(packet.get());
  }
  if (!got) {
    avcodec_send_packet(ctx.get(), nullptr);
    got = avcodec_receive_frame(ctx.get(), frame.get()) == 0;
  }
  if (!got || frame->width <= 0 || frame->height <= 0) throw bad_picture(path, "no frame could be decoded");
  Rgb8Video out;
  out.frames = 1;
  out.width = frame->width;
  out.height = frame->height;
  out.data.resize(static_cast<std::size_t>(out.width) * out.height * 3);
  // Exact for 8-bit RGB/RGBA/palette/grey pictures (a copy that drops alpha); JPEG's YUV goes through
  // accurate rounding and full chroma interpolation.
  std::unique_ptr<SwsContext, SwsFree> sws(sws_getContext(out.width, out.height, static_cast<AVPixelFormat>(frame->format), out.width,
                                                          out.height, AV_PIX_FMT_RGB24,
                                                          SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT | SWS_FULL_CHR_H_INP,
                                                          nullptr, nullptr, nullptr));
  if (!sws) throw bad_picture(path, "unsupported pixel format");
  uint8_t* dst[1] = {out.data.data()};
  int dst_stride[1] = {out.width * 3};
  sws_scale(sws.get(), frame->data, frame->linesize, 0, out.height, dst, dst_stride);
  return out;
}

#else

Rgb8Video read_image(const std::string& path) {
  Rgb8Video png;
  if (read_png_if_png(path, &png)) return png;
  throw Error(ErrorCode::kUnsupported, path + ": this build has no FFmpeg (-DWAN_WITH_FFMPEG=OFF) and reads PNG pictures only; "
                                              "save the picture as PNG or rebuild with FFmpeg");
}

#endif

}  // namespace wan
