// Where and how strongly each unit (channel) of a layer fires on each image: the basis of "dataset
// examples" (the inputs and receptive-field patches that excite a unit most).
#pragma once

#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "cnnvis/models/loaded_model.h"

namespace cnnvis {

struct UnitPeak {
  float value = 0;  // the channel's maximum over space (the value itself for flat layers)
  int y = 0, x = 0; // its position in the layer's map (first maximum in row-major order; 0, 0 when flat)
};

struct UnitPeaks {
  std::string layer;           // canonical name
  std::vector<int> channels;   // the channels asked for, in order
  int height = 1, width = 1;   // the layer's map size (1 x 1 for flat layers)
  bool spatial = false;        // C x H x W output
  std::vector<std::vector<UnitPeak>> peaks;  // [input][position in channels]
};

// channels empty: every channel. Throws UsageError for an unknown layer or a channel out of range.
UnitPeaks compute_unit_peaks(LoadedModel& model, const std::vector<cv::Mat>& inputs, const std::string& layer,
                             const std::vector<int>& channels);

}  // namespace cnnvis
