// Pictures of the training movie: one frame of a layer's activations on the fixed samples, and the
// loss/accuracy curves. Pure functions (cv::Mat in, cv::Mat out), so tests check colours and layout
// without training. Torch-free interface.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "cnnvis/methods/train.h"

namespace cnnvis {


struct ActivationFrameStyle {
  int cell = 40;         // side of one map cell in pixels (maps are scaled with nearest neighbour)
  int gap = 2;           // white space between cells
  int label_width = 34;  // left column with channel numbers
  int title_height = 24; // top band with layer name and step
};

// One frame of a layer's movie. samples: CV_8UC3 RGB images (the header row, one column each).
// maps[s][c]: CV_32F map of channel c for sample s (all the same size; every sample the same channels).
// channel_ids: the channel numbers shown in the left column (maps[s][c] is channel channel_ids[c]).
// The maps are coloured with the diverging colormap (positive blue, zero white, negative red) on ONE
// symmetric scale: `scale`, or max |value| over all maps when scale <= 0, so that brightness is
// comparable across samples and channels of the frame. Returns CV_8UC3 RGB.
cv::Mat render_activation_frame(const std::vector<cv::Mat>& samples, const std::vector<std::vector<cv::Mat>>& maps,
                                const std::vector<int>& channel_ids, const std::string& layer, std::int64_t step,
                                float scale = 0.0f, const ActivationFrameStyle& style = {});

// Where sample s / channel row c's map cell lies in a frame rendered with these counts (for tests).
cv::Rect activation_frame_cell(std::size_t sample, std::size_t channel_row, const ActivationFrameStyle& style = {});

// Loss and accuracy over training steps on a white canvas with labelled axes: left panel the training
// loss, right panel training accuracy (line) and test accuracy after each epoch (dots). Returns
// CV_8UC3 RGB.
struct TestAccuracyPoint {
  std::int64_t step = 0;
  double epoch = 0;
  double accuracy = 0;
};
cv::Mat render_training_curves(const std::vector<TrainCurvePoint>& curve, const std::vector<TestAccuracyPoint>& test);

}  // namespace cnnvis
