// Composing pictures: heatmap overlays and contact sheets with captions.
#pragma once

#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "cnnvis/io/colormap.h"

namespace cnnvis {

// Colours map01 (CV_32F in [0, 1], resized bilinearly to the image's size when it differs) and blends:
// out = alpha * heat + (1 - alpha) * image, then rescaled so that its maximum is 1 (pytorch-grad-cam's
// show_cam_on_image). image: CV_8UC3 RGB. Returns CV_8UC3 RGB.
cv::Mat overlay_heatmap(const cv::Mat& image_rgb8, const cv::Mat& map01, Colormap map, float alpha = 0.5f);

struct SheetCell {
  cv::Mat image;  // CV_8UC3 RGB or CV_8UC1
  std::string caption;  // drawn under the image; may be empty
};

struct SheetOptions {
  int columns = 0;      // 0: ceil(sqrt(n))
  int cell_width = 0;   // 0: widest image; images are scaled to fit the cell keeping aspect
  int cell_height = 0;  // 0: tallest image
  int padding = 6;
  std::string title;    // drawn across the top when not empty
};

// Lays cells out row-major on a white background. Returns CV_8UC3 RGB.
cv::Mat make_contact_sheet(const std::vector<SheetCell>& cells, const SheetOptions& options = {});

// Where cell i's image area starts in a sheet made with these cells and options (for tests).
cv::Rect contact_sheet_cell_rect(const std::vector<SheetCell>& cells, const SheetOptions& options, std::size_t index);

}  // namespace cnnvis
