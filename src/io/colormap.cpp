// Colormaps as 256-entry RGB lookup tables. The perceptual maps come from OpenCV so that they match
// what cv2.applyColorMap gives the Python tools; the diverging map is our own.
#include "cnnvis/io/colormap.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include <fmt/format.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "cnnvis/core/errors.h"

namespace cnnvis {
namespace {

using Lut = std::array<cv::Vec3b, 256>;

Lut opencv_lut(int cv_map) {
  cv::Mat ramp(1, 256, CV_8UC1);
  for (int i = 0; i < 256; ++i) ramp.at<std::uint8_t>(0, i) = static_cast<std::uint8_t>(i);
  cv::Mat bgr;
  cv::applyColorMap(ramp, bgr, cv_map);
  Lut lut;
  for (int i = 0; i < 256; ++i) {
    const cv::Vec3b c = bgr.at<cv::Vec3b>(0, i);
    lut[i] = cv::Vec3b(c[2], c[1], c[0]);  // OpenCV returns BGR; the library works in RGB
  }
  return lut;
}

Lut gray_lut() {
  Lut lut;
  for (int i = 0; i < 256; ++i) lut[i] = cv::Vec3b(i, i, i);
  return lut;
}

// Red -> white -> blue through ColorBrewer's RdBu anchors (lighter tints near the middle, so small
// values stay pale and the sign is still readable). Entry 128 = round(255 * 0.5) is exactly white.
Lut diverging_lut() {
  struct Anchor {
    double at;
    double r, g, b;
  };
  static const Anchor anchors[] = {
      {0.0, 178, 24, 43},          {1.0 / 6.0, 239, 138, 98},   {2.0 / 6.0, 253, 219, 199},
      {0.5, 255, 255, 255},        {4.0 / 6.0, 209, 229, 240},  {5.0 / 6.0, 103, 169, 207},
      {1.0, 33, 102, 172},
  };
  Lut lut;
  for (int i = 0; i < 256; ++i) {
    // Indices 0..128 cover the red half and 128..255 the blue half, so that white sits on 128.
    const double u = i <= 128 ? 0.5 * i / 128.0 : 0.5 + 0.5 * (i - 128) / 127.0;
    std::size_t k = 0;
    while (k + 2 < std::size(anchors) && u > anchors[k + 1].at) ++k;
    const Anchor& a = anchors[k];
    const Anchor& b = anchors[k + 1];
    const double f = std::clamp((u - a.at) / (b.at - a.at), 0.0, 1.0);
    auto mix = [f](double x, double y) { return cv::saturate_cast<std::uint8_t>(x + (y - x) * f); };
    lut[i] = cv::Vec3b(mix(a.r, b.r), mix(a.g, b.g), mix(a.b, b.b));
  }
  return lut;
}

const Lut& lut_for(Colormap map) {
  // Built once; function-local statics are thread-safe to initialise.
  static const Lut jet = opencv_lut(cv::COLORMAP_JET);
  static const Lut turbo = opencv_lut(cv::COLORMAP_TURBO);
  static const Lut viridis = opencv_lut(cv::COLORMAP_VIRIDIS);
  static const Lut inferno = opencv_lut(cv::COLORMAP_INFERNO);
  static const Lut gray = gray_lut();
  static const Lut diverging = diverging_lut();
  switch (map) {
    case Colormap::jet: return jet;
    case Colormap::turbo: return turbo;
    case Colormap::viridis: return viridis;
    case Colormap::inferno: return inferno;
    case Colormap::gray: return gray;
    case Colormap::diverging: return diverging;
  }
  return gray;
}

// round(255 * t) with t clamped to [0, 1] and NaN -> 0. Ties go to even, like OpenCV's convertTo
// and torch.round, so a map coloured here matches the same map saved as an image.
inline int quantise(float t) {
  if (!(t > 0.0f)) return 0;  // also catches NaN
  if (t >= 1.0f) return 255;
  return static_cast<int>(std::nearbyint(t * 255.0f));
}

const std::array<std::pair<const char*, Colormap>, 6> kNames = {{
    {"jet", Colormap::jet},
    {"turbo", Colormap::turbo},
    {"viridis", Colormap::viridis},
    {"inferno", Colormap::inferno},
    {"gray", Colormap::gray},
    {"diverging", Colormap::diverging},
}};

}  // namespace

Colormap parse_colormap(const std::string& name) {
  for (const auto& [text, map] : kNames) {
    if (name == text) return map;
  }
  if (name == "grey") return Colormap::gray;
  std::string choices;
  for (const auto& entry : kNames) {
    if (!choices.empty()) choices += ", ";
    choices += entry.first;
  }
  throw UsageError(fmt::format("unknown colormap '{}' (choices: {})", name, choices));
}

std::string colormap_name(Colormap map) {
  for (const auto& [text, value] : kNames) {
    if (value == map) return text;
  }
  return "gray";
}

std::vector<std::string> colormap_names() {
  std::vector<std::string> names;
  for (const auto& entry : kNames) names.emplace_back(entry.first);
  return names;
}

cv::Vec3b colormap_rgb(Colormap map, float t) { return lut_for(map)[quantise(t)]; }

cv::Mat apply_colormap(const cv::Mat& map01, Colormap map) {
  if (map01.channels() != 1) throw UsageError("apply_colormap needs a single-channel map");
  cv::Mat values;
  if (map01.depth() == CV_32F) {
    values = map01;
  } else {
    map01.convertTo(values, CV_32F);
  }
  const Lut& lut = lut_for(map);
  cv::Mat out(values.size(), CV_8UC3);
  for (int y = 0; y < values.rows; ++y) {
    const float* in = values.ptr<float>(y);
    cv::Vec3b* dst = out.ptr<cv::Vec3b>(y);
    for (int x = 0; x < values.cols; ++x) dst[x] = lut[quantise(in[x])];
  }
  return out;
}

cv::Mat apply_diverging(const cv::Mat& signed_map, float scale) {
  if (signed_map.channels() != 1) throw UsageError("apply_diverging needs a single-channel map");
  cv::Mat values;
  signed_map.convertTo(values, CV_32F);
  // NaN counts as zero; infinities become the largest finite values so that the scale stays finite.
  cv::patchNaNs(values, 0.0);
  const float big = std::numeric_limits<float>::max();
  cv::min(cv::max(values, -big), big, values);
  float s = std::isfinite(scale) ? scale : 0.0f;
  if (!(s > 0.0f)) {
    double lo = 0.0, hi = 0.0;
    if (!values.empty()) cv::minMaxLoc(values, &lo, &hi);
    s = static_cast<float>(std::max(std::abs(lo), std::abs(hi)));
  }
  if (!(s > 0.0f)) return cv::Mat(values.size(), CV_8UC3, cv::Scalar::all(255));  // all zero: white
  cv::Mat t = values * (0.5 / s) + 0.5;
  return apply_colormap(t, Colormap::diverging);
}

cv::Mat scale_by_max(const cv::Mat& map) {
  double hi = 0;
  cv::minMaxLoc(map, nullptr, &hi);
  return hi > 0 ? cv::Mat(map / hi) : cv::Mat::zeros(map.size(), CV_32F);
}

}  // namespace cnnvis
