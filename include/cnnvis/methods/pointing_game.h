// Pointing game (Zhang et al.; TorchRay): does an explanation's maximum fall on the object?
#pragma once

#include <opencv2/core/mat.hpp>
#include <opencv2/core/types.hpp>

namespace cnnvis {

// True when the map's maximum lies inside `box` grown by `tolerance` pixels on every side (TorchRay uses
// 15 px at 224 px). An all-zero (or constant) map has no maximum to point with and never hits.
bool pointing_game_hit(const cv::Mat& map, const cv::Rect& box, int tolerance = 0);

}  // namespace cnnvis
