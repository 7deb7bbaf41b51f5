// A layer's feature maps for each input, with per-channel statistics and a grid picture. Torch-free.
#pragma once

#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "cnnvis/io/colormap.h"
#include "cnnvis/models/loaded_model.h"

namespace cnnvis {

struct ChannelStat {
  int channel = 0;
  float mean = 0, max = 0, min = 0;
};

struct LayerActivations {
  std::string layer;              // canonical
  std::vector<cv::Mat> maps;      // one CV_32F map per channel (1x1 for vector layers)
  std::vector<ChannelStat> stats; // per channel, in channel order
  bool has_negative = false;      // signed maps (pre-ReLU layers): shown with the diverging colormap
  std::vector<Prediction> top;    // top-5 predictions
};

// One forward pass for the batch. inputs: model inputs (CV_32FC3 RGB [0, 1], the card's size).
std::vector<LayerActivations> run_activations(LoadedModel& model, const std::vector<cv::Mat>& inputs,
                                              const std::string& layer);

// Channel indices by decreasing mean activation (ties: lower index first), at most k.
std::vector<int> strongest_channels(const LayerActivations& activations, int k);

struct ActivationGridOptions {
  int cell = 64;            // side of one map cell (nearest-neighbour upscaling)
  int max_channels = 64;    // 0: all
  bool by_strength = false; // order cells by decreasing mean instead of channel index
  Colormap colormap = Colormap::viridis;  // for non-negative maps; signed maps use the diverging map
};

// The maps on one scale for the whole layer: non-negative maps divided by the layer's maximum, signed maps
// on the diverging colormap symmetric around zero (scale max |v|). Each cell is captioned with its
// channel. CV_8UC3 RGB.
cv::Mat render_activation_grid(const LayerActivations& activations, const ActivationGridOptions& options = {});

}  // namespace cnnvis
