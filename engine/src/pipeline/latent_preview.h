// A cheap live preview of a latent: the middle latent frame projected from 16 channels to RGB by a
// fixed linear map, downscaled to fit the progress board. Internal (torch types).
#pragma once
#include <torch/types.h>

#include "wan/progress_board.h"

namespace wan {

// latent: [16, F, h, w] in the sampler's (normalised) space.
PreviewImage latent_preview(const torch::Tensor& latent, int step, int total, int max_side = kPreviewMaxSide);

}  // namespace wan
