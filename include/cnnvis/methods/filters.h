// A convolution layer's kernels as pictures: first-layer kernels (3 input channels) as RGB tiles, deeper
// kernels as one grid per output channel of its per-input-channel kernels (diverging colours). Torch-free.
#pragma once

#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "cnnvis/models/loaded_model.h"

namespace cnnvis {

struct FilterBank {
  std::string layer;  // canonical name of the Conv2d node
  int out_channels = 0, in_channels = 0, kernel_h = 0, kernel_w = 0;
  std::vector<float> weights;  // out x in x kh x kw
  float max_abs = 0;           // over the whole layer
  // Kernel of output channel o over input channel i: CV_32F kh x kw (a copy).
  cv::Mat kernel(int out_channel, int in_channel) const;
};

// Canonical names of the model's Conv2d layers, in network order.
std::vector<std::string> conv_layer_names(const LoadedModel& model);

// layer: a name, an alias, "first" or "last". A layer that is not a convolution: UsageError listing the
// convolution layers.
FilterBank read_filters(const LoadedModel& model, const std::string& layer);

// RGB tile of one output channel of a 3-input-channel layer, on one symmetric scale for the layer:
// 0.5 + w / (2 max_abs), so grey is zero. cell: side in pixels (nearest-neighbour upscaling). CV_8UC3 RGB.
cv::Mat filter_rgb_tile(const FilterBank& bank, int out_channel, int cell);

// One output channel's kernels over its input channels (at most max_inputs of them) as a grid with the
// diverging colormap on the layer's symmetric scale. CV_8UC3 RGB.
cv::Mat filter_channel_grid(const FilterBank& bank, int out_channel, int cell, int max_inputs);

}  // namespace cnnvis
