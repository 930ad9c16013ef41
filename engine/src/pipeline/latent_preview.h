// A cheap live preview of a latent: the middle latent frame projected from 16 (Wan2.1 VAE) or 48
// (Wan2.2 VAE) channels to RGB by a
// fixed linear map, downscaled to fit the progress board. Internal (torch types).
#pragma once
#include <torch/types.h>

#include "wan/progress_board.h"

namespace wan {

// latent: [16 or 48, F, h, w] in the sampler's (normalised) space. Throws wan::Error(kInvalidArgument)
// for another shape.
PreviewImage latent_preview(const torch::Tensor& latent, int step, int total, int max_side = kPreviewMaxSide);

}  // namespace wan
