#include "video/pil_resize.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "wan/error.h"
#include "wan/generation.h"

namespace wan {

namespace {

// libImaging/Resample.c: support 3, lanczos_filter = sinc(x) * sinc(x / 3) on [-3, 3).
constexpr double kLanczosSupport = 3.0;
constexpr int kPrecisionBits = 32 - 8 - 2;  // PRECISION_BITS

double sinc(double x) {
  if (x == 0.0) return 1.0;
  x *= M_PI;
  return std::sin(x) / x;
}

double lanczos(double x) { return -3.0 <= x && x < 3.0 ? sinc(x) * sinc(x / 3.0) : 0.0; }

// precompute_coeffs then normalize_coeffs_8bpc for one axis: for each output index, the first input
// index, the count, and `ksize` fixed-point weights.
struct Coefficients {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<std::int32_t> k;  // [out * ksize]
};

Coefficients precompute(int in_size, double in0, double in1, int out_size) {
  double scale = (in1 - in0) / out_size, filterscale = scale;
  if (filterscale < 1.0) filterscale = 1.0;
  const double support = kLanczosSupport * filterscale;
  Coefficients c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.first.resize(out_size);
  c.count.resize(out_size);
  c.k.assign(static_cast<std::size_t>(out_size) * c.ksize, 0);
  std::vector<double> w(c.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = in0 + (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);  // C truncation, as the reference
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      w[x] = lanczos((x + xmin - center + 0.5) * ss);
      ww += w[x];
    }
    for (int x = 0; x < xmax; ++x) {
      const double v = ww != 0.0 ? w[x] / ww : w[x];
      // normalize_coeffs_8bpc: round half away from zero to 22 fractional bits.
      c.k[static_cast<std::size_t>(xx) * c.ksize + x] =
          static_cast<std::int32_t>(v < 0 ? -0.5 + v * (1 << kPrecisionBits) : 0.5 + v * (1 << kPrecisionBits));
    }
    c.first[xx] = xmin;
    c.count[xx] = xmax;
  }
  return c;
}

// clip8: the accumulator (with its 0.5 rounding bias) shifted down 22 bits, clamped to 0..255.
std::uint8_t clip8(std::int64_t acc) {
  const std::int64_t v = acc >> kPrecisionBits;  // arithmetic shift: floor, as the reference's lookup
  return static_cast<std::uint8_t>(std::clamp<std::int64_t>(v, 0, 255));
}

}  // namespace

std::array<std::int64_t, 2> best_output_size(std::int64_t w, std::int64_t h, std::int64_t dw, std::int64_t dh,
                                             double expected_area) {
  if (w < 1 || h < 1 || dw < 1 || dh < 1 || !(expected_area >= static_cast<double>(dw * dh)))
    throw Error(ErrorCode::kInvalidArgument, "the area " + std::to_string(static_cast<std::int64_t>(expected_area)) +
                                                 " is too small for a " + std::to_string(dw) + "x" +
                                                 std::to_string(dh) + " block");
  const double ratio = static_cast<double>(w) / static_cast<double>(h);
  const double ow = std::sqrt(expected_area * ratio);  // (expected_area * ratio) ** 0.5
  const double oh = expected_area / ow;
  const auto floor_to = [](double v, std::int64_t d) {
    return static_cast<std::int64_t>(std::floor(v / static_cast<double>(d)) * static_cast<double>(d));
  };
  // Width first, then height first; the ratio closer to the picture's wins (ties: height first).
  const std::int64_t ow1 = floor_to(ow, dw);
  const std::int64_t oh2 = floor_to(oh, dh);
  if (ow1 < dw || oh2 < dh)
    throw Error(ErrorCode::kInvalidArgument, "the area " + std::to_string(static_cast<std::int64_t>(expected_area)) +
                                                 " is too small for a " + std::to_string(w) + "x" + std::to_string(h) +
                                                 " picture in blocks of " + std::to_string(dw) + "x" +
                                                 std::to_string(dh));
  const std::int64_t oh1 = floor_to(expected_area / static_cast<double>(ow1), dh);
  const std::int64_t ow2 = floor_to(expected_area / static_cast<double>(oh2), dw);
  if (oh1 < dh || ow2 < dw)
    throw Error(ErrorCode::kInvalidArgument, "the area " + std::to_string(static_cast<std::int64_t>(expected_area)) +
                                                 " is too small for this picture's shape");
  const double ratio1 = static_cast<double>(ow1) / static_cast<double>(oh1);
  const double ratio2 = static_cast<double>(ow2) / static_cast<double>(oh2);
  if (std::max(ratio / ratio1, ratio1 / ratio) < std::max(ratio / ratio2, ratio2 / ratio)) return {ow1, oh1};
  return {ow2, oh2};
}

Rgb8Video resize_lanczos(const Rgb8Video& picture, int out_width, int out_height) {
  if (out_width < 1 || out_height < 1 || picture.width < 1 || picture.height < 1)
    throw Error(ErrorCode::kInvalidArgument, "resize: sizes must be at least 1x1");
  const int in_w = picture.width, in_h = picture.height;
  if (out_width == in_w && out_height == in_h) {  // Image.resize returns a copy
    Rgb8Video same = picture;
    same.frames = 1;
    same.data.resize(static_cast<std::size_t>(in_w) * in_h * 3);
    return same;
  }
  const Coefficients horiz = precompute(in_w, 0.0, in_w, out_width);
  const Coefficients vert = precompute(in_h, 0.0, in_h, out_height);
  const bool need_horizontal = out_width != in_w, need_vertical = out_height != in_h;
  const std::int64_t half = std::int64_t(1) << (kPrecisionBits - 1);

  // Horizontal pass over the rows the vertical pass uses (ImagingResampleInner's ybox).
  std::vector<std::uint8_t> temp;
  int temp_w = in_w, temp_h = in_h, row0 = 0;
  const std::uint8_t* src = picture.data.data();
  if (need_horizontal) {
    row0 = vert.first[0];
    const int row_end = vert.first[out_height - 1] + vert.count[out_height - 1];
    temp_w = out_width;
    temp_h = need_vertical ? row_end - row0 : in_h;
    if (!need_vertical) row0 = 0;
    temp.resize(static_cast<std::size_t>(temp_w) * temp_h * 3);
    for (int y = 0; y < temp_h; ++y) {
      const std::uint8_t* in_row = src + static_cast<std::size_t>(y + row0) * in_w * 3;
      std::uint8_t* out_row = temp.data() + static_cast<std::size_t>(y) * temp_w * 3;
      for (int xx = 0; xx < out_width; ++xx) {
        const std::int32_t* k = horiz.k.data() + static_cast<std::size_t>(xx) * horiz.ksize;
        for (int ch = 0; ch < 3; ++ch) {
          std::int64_t acc = half;
          for (int x = 0; x < horiz.count[xx]; ++x)
            acc += static_cast<std::int64_t>(in_row[(x + horiz.first[xx]) * 3 + ch]) * k[x];
          out_row[xx * 3 + ch] = clip8(acc);
        }
      }
    }
    src = temp.data();
  }
  Rgb8Video out;
  out.frames = 1;
  out.width = out_width;
  out.height = out_height;
  if (!need_vertical) {
    out.data = need_horizontal ? temp : picture.data;
    return out;
  }
  out.data.resize(static_cast<std::size_t>(out_width) * out_height * 3);
  for (int yy = 0; yy < out_height; ++yy) {
    const std::int32_t* k = vert.k.data() + static_cast<std::size_t>(yy) * vert.ksize;
    const int ymin = vert.first[yy] - row0;  // bounds shifted by the horizontal pass's first row
    std::uint8_t* out_row = out.data.data() + static_cast<std::size_t>(yy) * out_width * 3;
    for (int xx = 0; xx < out_width; ++xx)
      for (int ch = 0; ch < 3; ++ch) {
        std::int64_t acc = half;
        for (int y = 0; y < vert.count[yy]; ++y)
          acc += static_cast<std::int64_t>(src[(static_cast<std::size_t>(y + ymin) * temp_w + xx) * 3 + ch]) * k[y];
        out_row[xx * 3 + ch] = clip8(acc);
      }
  }
  return out;
}

Rgb8Video crop(const Rgb8Video& picture, int x, int y, int width, int height) {
  if (x < 0 || y < 0 || width < 1 || height < 1 || x + width > picture.width || y + height > picture.height)
    throw Error(ErrorCode::kInvalidArgument, "crop: the box is not inside the picture");
  Rgb8Video out;
  out.frames = 1;
  out.width = width;
  out.height = height;
  out.data.resize(static_cast<std::size_t>(width) * height * 3);
  for (int r = 0; r < height; ++r)
    std::copy_n(picture.data.data() + (static_cast<std::size_t>(r + y) * picture.width + x) * 3,
                static_cast<std::size_t>(width) * 3, out.data.data() + static_cast<std::size_t>(r) * width * 3);
  return out;
}

Rgb8Video ti2v_resize_and_crop(const Rgb8Video& picture, double max_area, std::int64_t multiple) {
  const auto [ow, oh] = best_output_size(picture.width, picture.height, multiple, multiple, max_area);
  const double scale = std::max(static_cast<double>(ow) / picture.width, static_cast<double>(oh) / picture.height);
  // Python's round(): half to even, as std::nearbyint in the default rounding mode.
  const int rw = static_cast<int>(std::nearbyint(picture.width * scale));
  const int rh = static_cast<int>(std::nearbyint(picture.height * scale));
  const Rgb8Video resized = resize_lanczos(picture, rw, rh);
  return crop(resized, static_cast<int>((rw - ow) / 2), static_cast<int>((rh - oh) / 2), static_cast<int>(ow),
              static_cast<int>(oh));
}

std::array<std::int64_t, 2> text_image_to_video_size(std::int64_t max_width, std::int64_t max_height,
                                                     std::int64_t image_width, std::int64_t image_height) {
  try {
    return best_output_size(image_width, image_height, 32, 32, static_cast<double>(max_width) * max_height);
  } catch (const Error&) {
    return {0, 0};
  }
}

}  // namespace wan
