// The picture preprocessing of Wan2.2 TI2V-5B's image-to-video (textimage2video.py WanTI2V.i2v, lines
// 462-477): the output size (best_output_size, wan/utils/utils.py:202-225), then Pillow's
// Image.resize(..., Image.LANCZOS) and a centre crop. The resize reproduces Pillow's integer
// implementation (libImaging/Resample.c: ImagingResample with the Lanczos-3 filter, separable,
// horizontal pass then vertical, coefficients in 22-bit fixed point, each pass rounded and clamped to
// 8 bits), so the picture the VAE encodes is the reference's byte for byte. No torch types; pure
// functions, any thread.
#pragma once
#include <array>
#include <cstdint>

#include "video/video_writer.h"

namespace wan {

// best_output_size(w, h, dw, dh, expected_area): the (width, height), multiples of (dw, dh), whose
// aspect is closest to w / h with width * height <= expected_area, trying width first then height
// (Python float arithmetic: floor divisions, int() truncation). Throws wan::Error(kInvalidArgument)
// when the area is too small for one dw x dh block.
std::array<std::int64_t, 2> best_output_size(std::int64_t w, std::int64_t h, std::int64_t dw, std::int64_t dh,
                                             double expected_area);

// Pillow's img.resize((out_width, out_height), Image.LANCZOS) of one RGB frame (frame 0 of `picture`).
// Throws wan::Error(kInvalidArgument) for sizes below 1.
Rgb8Video resize_lanczos(const Rgb8Video& picture, int out_width, int out_height);

// img.crop((x, y, x + width, y + height)) of frame 0 (inside the picture; kInvalidArgument otherwise).
Rgb8Video crop(const Rgb8Video& picture, int x, int y, int width, int height);

// The whole TI2V preprocessing: the size from best_output_size(w, h, 32, 32, max_area), the resize by
// max(ow / w, oh / h) rounded (Python round: half to even), and the centre crop at
// ((W' - ow) // 2, (H' - oh) // 2). Returns the (ow x oh) picture.
Rgb8Video ti2v_resize_and_crop(const Rgb8Video& picture, double max_area, std::int64_t multiple = 32);

}  // namespace wan
