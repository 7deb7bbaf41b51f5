// Line charts of curves over [0, 1] (deletion / insertion curves), drawn with OpenCV. Torch-free.
#pragma once

#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

namespace cnnvis {

struct PlotSeries {
  std::string name;
  std::vector<float> values;  // equally spaced over x in [0, 1]; y expected in [0, 1]
};

// A chart with axes, light grid lines, one coloured line per series and a legend. Returns CV_8UC3 RGB.
cv::Mat plot_curves(const std::vector<PlotSeries>& series, const std::string& title, const std::string& x_label,
                    const std::string& y_label, int width = 480, int height = 320);

}  // namespace cnnvis
