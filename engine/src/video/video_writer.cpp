#include "video/video_writer.h"

#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <vector>

#if WAN_WITH_FFMPEG
extern "C" {
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
}
#include "video/av_handles.h"
#include "video/av_log.h"
#endif

#include "wan/error.h"
#include "weights/file_util.h"

namespace wan {
namespace fs = std::filesystem;
namespace {

std::string lower_extension(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext;
}

const char* muxer_for(const std::string& path) {
  const std::string ext = lower_extension(path);
  if (ext == ".mp4") return "mp4";
  if (ext == ".mkv") return "matroska";
  if (ext == ".mov") return "mov";
  return nullptr;
}

void check_video(const Rgb8Video& v) {
  if (v.frames < 1 || v.width < 2 || v.height < 2 ||
      v.data.size() != static_cast<std::size_t>(v.frames) * v.width * v.height * 3)
    throw Error(ErrorCode::kInternal, "video buffer does not match its size");
}
}  // namespace

#if WAN_WITH_FFMPEG
namespace {

void check_av(int ret, const std::string& what) {
  if (ret < 0) {
    const std::string said = av::last_log_error();
    throw Error(ErrorCode::kIo, what + ": " + av::error_text(ret) + (said.empty() ? "" : " (FFmpeg: " + said + ")"));
  }
}

using CodecContextDeleter = av::CodecContextDeleter;
using FrameDeleter = av::FrameDeleter;
using PacketDeleter = av::PacketDeleter;
using SwsDeleter = av::SwsDeleter;
// Output container; closes the file and removes the temp file unless committed.
struct OutputFile {
  AVFormatContext* ctx = nullptr;
  std::string temp_path;
  std::unique_ptr<PartialFileRegistration> registration;  // removed if a signal ends the rank mid-write
  bool committed = false;
  ~OutputFile() {
    if (ctx) {
      if (ctx->pb) avio_closep(&ctx->pb);
      avformat_free_context(ctx);
    }
    if (!committed && !temp_path.empty()) std::remove(temp_path.c_str());
  }
};

// Sends one frame (or nullptr to flush) and writes every packet the encoder returns.
void encode_and_write(AVCodecContext* enc, AVFrame* frame, AVFormatContext* fmt, AVStream* st, AVPacket* pkt) {
  check_av(avcodec_send_frame(enc, frame), "encoding a frame");
  for (;;) {
    const int ret = avcodec_receive_packet(enc, pkt);
    if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF) return;
    check_av(ret, "encoding a frame");
    av_packet_rescale_ts(pkt, enc->time_base, st->time_base);
    pkt->stream_index = st->index;
    check_av(av_interleaved_write_frame(fmt, pkt), "writing " + std::string(fmt->url));
  }
}

std::unique_ptr<AVFrame, FrameDeleter> alloc_frame(AVPixelFormat format, int width, int height) {
  std::unique_ptr<AVFrame, FrameDeleter> f(av_frame_alloc());
  if (!f) throw Error(ErrorCode::kIo, "out of memory allocating a video frame");
  f->format = format;
  f->width = width;
  f->height = height;
  check_av(av_frame_get_buffer(f.get(), 0), "allocating a video frame");
  return f;
}

}  // namespace

void encode_video(const std::string& path, const Rgb8Video& video, const VideoEncodeOptions& options) {
  encode_video_staged(path, video, options).commit();
}

PendingRename encode_video_staged(const std::string& path, const Rgb8Video& video, const VideoEncodeOptions& options) {
  av::capture_log();  // x264's statistics and errors stay off stderr; errors go into the message
  check_video(video);
  const char* muxer = muxer_for(path);
  if (!muxer) throw Error(ErrorCode::kInvalidArgument, path + ": unsupported video file type; use .mp4, .mkv or .mov");
  if (video.width % 2 || video.height % 2)
    throw Error(ErrorCode::kInvalidArgument, path + ": H.264 yuv420p needs an even width and height");
  if (options.fps < 1 || options.fps > 240) throw Error(ErrorCode::kInvalidArgument, "fps must be 1..240");
  if (options.crf < 0 || options.crf > 51) throw Error(ErrorCode::kInvalidArgument, "crf must be 0..51");
  const AVCodec* codec = avcodec_find_encoder_by_name("libx264");
  if (!codec)
    throw Error(ErrorCode::kUnsupported,
                "this FFmpeg has no libx264 encoder; install an FFmpeg built with x264 "
                "(Debian: libavcodec59) or write PNG frames instead");

  OutputFile out;
  out.temp_path = path + ".part-" + std::to_string(getpid());  // same rule as AtomicFileWriter
  out.registration = std::make_unique<PartialFileRegistration>(out.temp_path);
  check_av(avformat_alloc_output_context2(&out.ctx, nullptr, muxer, out.temp_path.c_str()), path);
  AVStream* stream = avformat_new_stream(out.ctx, nullptr);
  if (!stream) throw Error(ErrorCode::kIo, path + ": cannot add a video stream");

  std::unique_ptr<AVCodecContext, CodecContextDeleter> enc(avcodec_alloc_context3(codec));
  enc->width = video.width;
  enc->height = video.height;
  enc->pix_fmt = AV_PIX_FMT_YUV420P;
  enc->time_base = AVRational{1, options.fps};
  enc->framerate = AVRational{options.fps, 1};
  enc->gop_size = options.fps * 2;
  enc->color_range = AVCOL_RANGE_MPEG;
  enc->colorspace = AVCOL_SPC_SMPTE170M;
  enc->color_primaries = AVCOL_PRI_SMPTE170M;
  enc->color_trc = AVCOL_TRC_SMPTE170M;
  if (out.ctx->oformat->flags & AVFMT_GLOBALHEADER) enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  av_opt_set(enc->priv_data, "preset", options.preset.c_str(), 0);
  av_opt_set(enc->priv_data, "crf", std::to_string(options.crf).c_str(), 0);
  check_av(avcodec_open2(enc.get(), codec, nullptr), "opening the libx264 encoder");
  check_av(avcodec_parameters_from_context(stream->codecpar, enc.get()), path);
  stream->time_base = enc->time_base;
  stream->avg_frame_rate = enc->framerate;

  // "file:" keeps FFmpeg from reading a name such as "take2:final.mp4.part-1" as a protocol URL.
  check_av(avio_open(&out.ctx->pb, ("file:" + out.temp_path).c_str(), AVIO_FLAG_WRITE),
           "cannot write " + out.temp_path);
  AVDictionary* mux_options = nullptr;
  if (std::string(muxer) == "mp4" || std::string(muxer) == "mov")
    av_dict_set(&mux_options, "movflags", "+faststart", 0);
  const int header = avformat_write_header(out.ctx, &mux_options);
  av_dict_free(&mux_options);
  check_av(header, "writing the header of " + path);

  std::unique_ptr<SwsContext, SwsDeleter> sws(sws_getContext(video.width, video.height, AV_PIX_FMT_RGB24, video.width,
                                                             video.height, AV_PIX_FMT_YUV420P, SWS_BICUBIC, nullptr,
                                                             nullptr, nullptr));
  if (!sws) throw Error(ErrorCode::kIo, "cannot set up RGB -> YUV conversion");
  auto frame = alloc_frame(AV_PIX_FMT_YUV420P, video.width, video.height);
  std::unique_ptr<AVPacket, PacketDeleter> pkt(av_packet_alloc());
  for (int t = 0; t < video.frames; ++t) {
    check_av(av_frame_make_writable(frame.get()), "video frame");
    const std::uint8_t* src[1] = {video.frame(t)};
    const int src_stride[1] = {video.width * 3};
    sws_scale(sws.get(), src, src_stride, 0, video.height, frame->data, frame->linesize);
    frame->pts = t;
    encode_and_write(enc.get(), frame.get(), out.ctx, stream, pkt.get());
  }
  encode_and_write(enc.get(), nullptr, out.ctx, stream, pkt.get());
  check_av(av_write_trailer(out.ctx), "finishing " + path);
  check_av(avio_closep(&out.ctx->pb), "closing " + path);
  PendingRename finished(out.temp_path, path);  // takes over the temp file
  out.committed = true;
  return finished;
}
#else
void encode_video(const std::string& path, const Rgb8Video& video, const VideoEncodeOptions& options) {
  encode_video_staged(path, video, options).commit();
}

PendingRename encode_video_staged(const std::string& path, const Rgb8Video&, const VideoEncodeOptions&) {
  throw Error(ErrorCode::kUnsupported,
              "cannot write " + path +
                  ": this build has no FFmpeg (configured with "
                  "-DWAN_WITH_FFMPEG=OFF); write PNG frames with --frames-dir, or rebuild with FFmpeg");
}
#endif

bool can_encode_video() { return WAN_WITH_FFMPEG != 0; }

bool is_supported_video_extension(const std::string& path) { return muxer_for(path) != nullptr; }

namespace {
void put_be32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}
void put_chunk(std::vector<std::uint8_t>& out, const char type[4], const std::vector<std::uint8_t>& data) {
  put_be32(out, static_cast<std::uint32_t>(data.size()));
  const std::size_t type_at = out.size();
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), data.begin(), data.end());
  const uLong crc = crc32(0L, out.data() + type_at, static_cast<uInt>(4 + data.size()));
  put_be32(out, static_cast<std::uint32_t>(crc));
}
}  // namespace

// PNG through zlib (RGB, 8 bit, filter 0, non-interlaced): needs no FFmpeg, so builds without
// FFmpeg (-DWAN_WITH_FFMPEG=OFF) still write frames.
void write_png(const std::string& path, const Rgb8Video& video, int t) {
  check_video(video);
  if (t < 0 || t >= video.frames) throw Error(ErrorCode::kInvalidArgument, "frame index out of range for " + path);
  const std::size_t row = static_cast<std::size_t>(video.width) * 3;
  std::vector<std::uint8_t> raw;
  raw.reserve((row + 1) * video.height);
  const std::uint8_t* src = video.frame(t);
  for (int y = 0; y < video.height; ++y) {
    raw.push_back(0);  // filter type "None"
    raw.insert(raw.end(), src + y * row, src + (y + 1) * row);
  }
  uLongf packed_size = compressBound(static_cast<uLong>(raw.size()));
  std::vector<std::uint8_t> packed(packed_size);
  if (compress2(packed.data(), &packed_size, raw.data(), static_cast<uLong>(raw.size()), 6) != Z_OK)
    throw Error(ErrorCode::kInternal, "zlib failed to compress " + path);
  packed.resize(packed_size);

  std::vector<std::uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  std::vector<std::uint8_t> ihdr;
  put_be32(ihdr, static_cast<std::uint32_t>(video.width));
  put_be32(ihdr, static_cast<std::uint32_t>(video.height));
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});  // 8 bit, truecolour, deflate, filter 0, no interlace
  put_chunk(png, "IHDR", ihdr);
  put_chunk(png, "IDAT", packed);
  put_chunk(png, "IEND", {});
  AtomicFileWriter writer(path);
  writer.write(png.data(), png.size());
  writer.commit();
}

void write_png_frames(const std::string& dir, const Rgb8Video& video) { write_png_frames_staged(dir, video).commit(); }

PendingRename write_png_frames_staged(const std::string& dir, const Rgb8Video& video) {
  const fs::path target(dir);
  if (fs::exists(target))
    throw Error(ErrorCode::kInvalidArgument, dir + ": already exists; PNG frames go into a new folder");
  const fs::path temp = dir + ".part-" + std::to_string(getpid());
  std::error_code ec;
  fs::create_directories(temp, ec);
  if (ec) throw Error(ErrorCode::kIo, "cannot create " + temp.string() + ": " + ec.message());
  PendingRename staged(temp.string(), dir);  // removes the folder unless committed
  for (int t = 0; t < video.frames; ++t) {
    char name[32];
    std::snprintf(name, sizeof(name), "frame_%05d.png", t);
    write_png((temp / name).string(), video, t);
  }
  return staged;
}

}  // namespace wan
