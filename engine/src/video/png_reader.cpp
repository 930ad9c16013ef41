// PNG decoding through zlib: the pictures image-to-video reads most, decoded exactly as PIL does
// (8-bit samples as stored, 16-bit ones by their high byte, palette and grey expanded, alpha dropped),
// and with no FFmpeg needed.
#include "video/png_reader.h"

#include <zlib.h>

#include <array>
#include <cstring>
#include <fstream>
#include <iterator>

#include "wan/error.h"
#include "wan/video_decode.h"

namespace wan {
namespace {

std::uint32_t be32(const std::uint8_t* p) {
  return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) | p[3];
}

int paeth(int a, int b, int c) {
  const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

}  // namespace

bool is_png(const std::vector<std::uint8_t>& bytes) {
  static const std::uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  return bytes.size() >= 8 && std::memcmp(bytes.data(), kSignature, 8) == 0;
}

void check_picture_pixels(const std::string& path, std::int64_t width, std::int64_t height) {
  if (width > 0 && height > 0 &&
      static_cast<std::uint64_t>(width) * static_cast<std::uint64_t>(height) > kMaxPicturePixels)
    throw Error(ErrorCode::kInvalidArgument,
                path + ": the picture is " + std::to_string(width) + "x" + std::to_string(height) + ", more than the " +
                    std::to_string(kMaxPicturePixels / 1000000) + " megapixels the engine reads: scale it down first");
}

Rgb8Video decode_png(const std::vector<std::uint8_t>& bytes, const std::string& path) {
  auto bad = [&](const std::string& why) {
    return Error(ErrorCode::kCorruptFile, path + ": cannot read the picture (" + why + "); use a PNG or JPEG file");
  };
  if (!is_png(bytes)) throw bad("not a PNG file");
  std::uint32_t width = 0, height = 0;
  int depth = 0, color = -1, interlace = 0;
  std::vector<std::uint8_t> palette, packed;
  bool end = false;
  for (std::size_t at = 8; !end;) {
    if (at + 12 > bytes.size()) throw bad("truncated");
    const std::uint32_t length = be32(&bytes[at]);
    if (length > bytes.size() - at - 12) throw bad("truncated");
    const std::string type(reinterpret_cast<const char*>(&bytes[at + 4]), 4);
    const std::uint8_t* data = &bytes[at + 8];
    if (crc32(crc32(0L, Z_NULL, 0), &bytes[at + 4], length + 4) != be32(data + length))
      throw bad("checksum error in " + type);
    if (type == "IHDR") {
      if (length < 13) throw bad("short header");
      width = be32(data);
      height = be32(data + 4);
      depth = data[8];
      color = data[9];
      interlace = data[12];
    } else if (type == "PLTE") {
      palette.assign(data, data + length);
    } else if (type == "IDAT") {
      packed.insert(packed.end(), data, data + length);
    } else if (type == "IEND") {
      end = true;
    }
    at += 12 + length;
  }
  static const std::array<int, 7> kChannels = {1, 0, 3, 1, 2, 0, 4};  // by colour type
  if (width == 0 || height == 0 || width > 32768 || height > 32768) throw bad("picture size out of range");
  // Before anything is inflated: a few KB of deflate can stand for gigabytes of pixels.
  check_picture_pixels(path, width, height);
  if (color < 0 || color > 6 || kChannels[color] == 0) throw bad("unknown colour type");
  if (depth != 1 && depth != 2 && depth != 4 && depth != 8 && depth != 16) throw bad("unknown bit depth");
  if (depth < 8 && color != 0 && color != 3) throw bad("bit depth not allowed for the colour type");
  if (interlace != 0) throw bad("interlaced PNG is not supported; save it without interlacing");
  if (color == 3 && palette.size() < 3) throw bad("palette missing");
  const int channels = kChannels[color];
  const std::size_t bits_per_pixel = static_cast<std::size_t>(channels) * depth;
  const std::size_t stride = (width * bits_per_pixel + 7) / 8, bpp = std::max<std::size_t>(1, bits_per_pixel / 8);
  std::vector<std::uint8_t> raw((stride + 1) * height);
  z_stream z{};
  if (inflateInit(&z) != Z_OK) throw bad("zlib");
  z.next_in = packed.data();
  z.avail_in = static_cast<uInt>(packed.size());
  z.next_out = raw.data();
  z.avail_out = static_cast<uInt>(raw.size());
  const int rc = inflate(&z, Z_FINISH);
  inflateEnd(&z);
  if (rc != Z_STREAM_END || z.avail_out != 0) throw bad("image data truncated or corrupt");

  // Undo the per-row filters in place.
  std::vector<std::uint8_t> prev(stride, 0);
  for (std::uint32_t y = 0; y < height; ++y) {
    std::uint8_t* row = &raw[y * (stride + 1) + 1];
    const int filter = row[-1];
    for (std::size_t i = 0; i < stride; ++i) {
      const int a = i >= bpp ? row[i - bpp] : 0, b = prev[i], c = i >= bpp ? prev[i - bpp] : 0;
      int v = row[i];
      switch (filter) {
        case 0:
          break;
        case 1:
          v += a;
          break;
        case 2:
          v += b;
          break;
        case 3:
          v += (a + b) / 2;
          break;
        case 4:
          v += paeth(a, b, c);
          break;
        default:
          throw bad("unknown row filter");
      }
      row[i] = static_cast<std::uint8_t>(v);
    }
    std::memcpy(prev.data(), row, stride);
  }

  Rgb8Video out;
  out.frames = 1;
  out.width = static_cast<int>(width);
  out.height = static_cast<int>(height);
  out.data.resize(static_cast<std::size_t>(width) * height * 3);
  const int max_small = (1 << depth) - 1;
  for (std::uint32_t y = 0; y < height; ++y) {
    const std::uint8_t* row = &raw[y * (stride + 1) + 1];
    auto sample = [&](std::size_t index) -> int {  // the index-th sample of the row, 8-bit
      if (depth == 8) return row[index];
      if (depth == 16) return row[2 * index];
      const std::size_t bit = index * depth;
      return (row[bit / 8] >> (8 - depth - bit % 8)) & max_small;
    };
    for (std::uint32_t x = 0; x < width; ++x) {
      std::uint8_t* px = &out.data[(static_cast<std::size_t>(y) * width + x) * 3];
      if (color == 3) {
        const std::size_t i = static_cast<std::size_t>(sample(x)) * 3;
        if (i + 2 >= palette.size()) throw bad("palette index out of range");
        std::memcpy(px, &palette[i], 3);
      } else if (color == 0 || color == 4) {
        int g = sample(static_cast<std::size_t>(x) * channels);
        if (depth < 8) g = g * 255 / max_small;
        px[0] = px[1] = px[2] = static_cast<std::uint8_t>(g);
      } else {
        for (int c = 0; c < 3; ++c)
          px[c] = static_cast<std::uint8_t>(sample(static_cast<std::size_t>(x) * channels + c));
      }
    }
  }
  return out;
}

}  // namespace wan
