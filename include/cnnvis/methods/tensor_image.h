// Conversions between OpenCV images/maps and LibTorch tensors (library-internal; needs ATen).
#pragma once

#include <vector>

#include <ATen/core/Tensor.h>
#include <opencv2/core/mat.hpp>

#include "cnnvis/io/model_card.h"

namespace cnnvis {

// inputs: CV_32FC3 RGB in [0, 1], all of the card's input size. Returns N x 3 x H x W on device,
// scaled by input_range and normalised with the card's mean/std.
at::Tensor images_to_tensor(const std::vector<cv::Mat>& inputs, const ModelCard& card, const at::Device& device);

// A 2-D float tensor (any device) -> CV_32F Mat (owning copy).
cv::Mat tensor_to_map(const at::Tensor& map2d);

// Per map of an N x h x w tensor: subtract the min, divide by (max + 1e-7), so an all-zero (or constant)
// map stays all zero instead of becoming NaN.
at::Tensor normalize_maps(const at::Tensor& maps);

}  // namespace cnnvis
