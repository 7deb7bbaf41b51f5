// Colormaps for heatmaps and signed maps.
#pragma once

#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

namespace cnnvis {

// diverging: 0 -> red, 0.5 -> white, 1 -> blue (positive blue, zero white, negative red when a
// signed map s in [-m, m] is shown as t = 0.5 + s / (2m)).
enum class Colormap { jet, turbo, viridis, inferno, gray, diverging };

Colormap parse_colormap(const std::string& name);  // throws UsageError listing the names
std::string colormap_name(Colormap map);
std::vector<std::string> colormap_names();

// The RGB colour of t (clamped to [0, 1]) in the map; quantised to 256 levels like the images.
cv::Vec3b colormap_rgb(Colormap map, float t);

// CV_32F single-channel map with values in [0, 1] (clamped; NaN -> 0) -> CV_8UC3 RGB.
cv::Mat apply_colormap(const cv::Mat& map01, Colormap map);

// A CV_32F map >= 0 scaled by its maximum into [0, 1]; an all-zero map stays zero instead of NaN.
cv::Mat scale_by_max(const cv::Mat& map);

// Signed CV_32F map -> RGB with the diverging map, symmetric around zero: t = 0.5 + v / (2 * scale).
// scale <= 0 means max |v| of the map (all-zero maps render white).
cv::Mat apply_diverging(const cv::Mat& signed_map, float scale = 0.0f);

}  // namespace cnnvis
