#include "cnnvis/io/plot.h"

#include <algorithm>
#include <cstdio>

#include <opencv2/imgproc.hpp>

namespace cnnvis {

namespace {
// Tableau-like palette (RGB), distinguishable for up to ten series; repeats beyond.
const cv::Scalar kPalette[] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},  {148, 103, 189},
                               {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}};
}  // namespace

cv::Mat plot_curves(const std::vector<PlotSeries>& series, const std::string& title, const std::string& x_label,
                    const std::string& y_label, int width, int height) {
  cv::Mat canvas(height, width, CV_8UC3, cv::Scalar(255, 255, 255));
  const int left = 48, right = 150, top = 28, bottom = 40;
  const cv::Rect area(left, top, std::max(10, width - left - right), std::max(10, height - top - bottom));
  const int font = cv::FONT_HERSHEY_SIMPLEX;
  auto to_px = [&](double x, double y) {
    y = std::clamp(y, 0.0, 1.0);
    return cv::Point(area.x + static_cast<int>(x * area.width + 0.5),
                     area.y + area.height - static_cast<int>(y * area.height + 0.5));
  };
  for (int i = 0; i <= 4; ++i) {
    const double t = i / 4.0;
    cv::line(canvas, to_px(t, 0), to_px(t, 1), cv::Scalar(225, 225, 225), 1);
    cv::line(canvas, to_px(0, t), to_px(1, t), cv::Scalar(225, 225, 225), 1);
    char label[16];
    std::snprintf(label, sizeof label, "%.2g", t);
    cv::putText(canvas, label, to_px(t, 0) + cv::Point(-8, 16), font, 0.35, cv::Scalar(60, 60, 60), 1, cv::LINE_AA);
    cv::putText(canvas, label, to_px(0, t) + cv::Point(-34, 4), font, 0.35, cv::Scalar(60, 60, 60), 1, cv::LINE_AA);
  }
  cv::rectangle(canvas, area, cv::Scalar(0, 0, 0), 1);
  cv::putText(canvas, title, cv::Point(left, 18), font, 0.5, cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
  cv::putText(canvas, x_label, cv::Point(area.x + area.width / 2 - 40, height - 8), font, 0.4, cv::Scalar(0, 0, 0), 1,
              cv::LINE_AA);
  cv::putText(canvas, y_label, cv::Point(4, top - 4 + area.height / 2), font, 0.35, cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
  for (std::size_t s = 0; s < series.size(); ++s) {
    const cv::Scalar colour = kPalette[s % (sizeof kPalette / sizeof kPalette[0])];
    const auto& v = series[s].values;
    for (std::size_t k = 1; k < v.size(); ++k) {
      const double x0 = (k - 1.0) / (v.size() - 1), x1 = static_cast<double>(k) / (v.size() - 1);
      cv::line(canvas, to_px(x0, v[k - 1]), to_px(x1, v[k]), colour, 2, cv::LINE_AA);
    }
    const cv::Point legend(area.x + area.width + 10, top + 14 + static_cast<int>(s) * 16);
    cv::line(canvas, legend + cv::Point(0, -4), legend + cv::Point(16, -4), colour, 2, cv::LINE_AA);
    cv::putText(canvas, series[s].name, legend + cv::Point(20, 0), font, 0.38, cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
  }
  return canvas;
}

}  // namespace cnnvis
