#include "cnnvis/methods/pointing_game.h"

#include <opencv2/core.hpp>

namespace cnnvis {

bool pointing_game_hit(const cv::Mat& map, const cv::Rect& box, int tolerance) {
  double lo = 0, hi = 0;
  cv::Point at;
  cv::minMaxLoc(map, &lo, &hi, nullptr, &at);
  if (!(hi > lo)) return false;
  const cv::Rect grown(box.x - tolerance, box.y - tolerance, box.width + 2 * tolerance, box.height + 2 * tolerance);
  return grown.contains(at);
}

}  // namespace cnnvis
