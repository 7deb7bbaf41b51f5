#include "cnnvis/io/embedding_plot.h"

#include <algorithm>
#include <cmath>
#include <map>

#include <opencv2/imgproc.hpp>

#include "cnnvis/core/errors.h"

namespace cnnvis {

namespace {

struct Bounds {
  float min_x, max_x, min_y, max_y;
};

Bounds bounds_of(const std::vector<float>& xy) {
  Bounds b{0, 1, 0, 1};
  if (xy.size() < 2) return b;
  b = {xy[0], xy[0], xy[1], xy[1]};
  for (std::size_t i = 1; i < xy.size() / 2; ++i) {
    b.min_x = std::min(b.min_x, xy[2 * i]);
    b.max_x = std::max(b.max_x, xy[2 * i]);
    b.min_y = std::min(b.min_y, xy[2 * i + 1]);
    b.max_y = std::max(b.max_y, xy[2 * i + 1]);
  }
  return b;
}

// Same scale on both axes, centred; y grows upwards as in a plot.
cv::Point2f to_pixel(const Bounds& b, float x, float y, int size, int margin) {
  const float span = std::max({b.max_x - b.min_x, b.max_y - b.min_y, 1e-12f});
  const float scale = (size - 2.f * margin) / span;
  const float ox = margin + 0.5f * ((size - 2.f * margin) - (b.max_x - b.min_x) * scale);
  const float oy = margin + 0.5f * ((size - 2.f * margin) - (b.max_y - b.min_y) * scale);
  return {ox + (x - b.min_x) * scale, size - (oy + (y - b.min_y) * scale)};
}

cv::Mat fit_thumbnail(const cv::Mat& image, int side) {
  if (image.empty()) return cv::Mat(side, side, CV_8UC3, cv::Scalar(200, 200, 200));
  cv::Mat rgb = image;
  if (rgb.channels() == 1) cv::cvtColor(rgb, rgb, cv::COLOR_GRAY2RGB);
  const double scale = static_cast<double>(side) / std::max(rgb.cols, rgb.rows);
  cv::Mat out;
  cv::resize(rgb, out, cv::Size(std::max(1, static_cast<int>(std::lround(rgb.cols * scale))),
                                std::max(1, static_cast<int>(std::lround(rgb.rows * scale)))),
             0, 0, scale < 1 ? cv::INTER_AREA : cv::INTER_LINEAR);
  return out;
}

void paste(cv::Mat& canvas, const cv::Mat& thumb, int x0, int y0) {
  const cv::Rect target = cv::Rect(x0, y0, thumb.cols, thumb.rows) & cv::Rect(0, 0, canvas.cols, canvas.rows);
  if (target.empty()) return;
  thumb(cv::Rect(target.x - x0, target.y - y0, target.width, target.height)).copyTo(canvas(target));
}

}  // namespace

cv::Scalar label_colour(int label) {
  static const int tab[20][3] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},   {214, 39, 40},   {148, 103, 189},
                                 {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34},  {23, 190, 207},
                                 {174, 199, 232}, {255, 187, 120}, {152, 223, 138}, {255, 152, 150}, {197, 176, 213},
                                 {196, 156, 148}, {247, 182, 210}, {199, 199, 199}, {219, 219, 141}, {158, 218, 229}};
  if (label < 0) return {160, 160, 160};
  if (label < 20) return {static_cast<double>(tab[label][0]), static_cast<double>(tab[label][1]),
                          static_cast<double>(tab[label][2])};
  const double hue = std::fmod(label * 137.50776405, 360.0) / 2.0;  // OpenCV hue range 0..180
  cv::Mat hsv(1, 1, CV_8UC3, cv::Scalar(hue, 200, 210)), rgb;
  cv::cvtColor(hsv, rgb, cv::COLOR_HSV2RGB);
  const cv::Vec3b c = rgb.at<cv::Vec3b>(0, 0);
  return {static_cast<double>(c[0]), static_cast<double>(c[1]), static_cast<double>(c[2])};
}

cv::Point2f embedding_to_pixel(const std::vector<float>& xy, std::size_t i, int size, int margin) {
  return to_pixel(bounds_of(xy), xy[2 * i], xy[2 * i + 1], size, margin);
}

cv::Mat render_scatter(const std::vector<float>& xy, const std::vector<int>& labels,
                       const std::vector<std::string>& names, const ScatterOptions& options) {
  const std::size_t n = xy.size() / 2;
  if (!labels.empty() && labels.size() != n) throw UsageError("scatter: labels and points differ in number");
  const int size = std::max(200, options.size);
  const int margin = size / 30;
  std::map<int, int> counts;
  for (std::size_t i = 0; i < n; ++i) ++counts[labels.empty() ? -1 : labels[i]];
  const bool legend = !labels.empty();
  const int legend_width = legend ? std::max(220, size / 4) : 0;
  cv::Mat canvas(size, size + legend_width, CV_8UC3, cv::Scalar(255, 255, 255));
  const int radius = options.point_radius > 0
                         ? options.point_radius
                         : std::clamp(static_cast<int>(std::lround(size / 120.0 / std::sqrt(std::max<std::size_t>(1, n) / 100.0))), 1, 6);
  const Bounds b = bounds_of(xy);
  cv::Mat plot = canvas(cv::Rect(0, 0, size, size));
  for (std::size_t i = 0; i < n; ++i) {
    const cv::Point2f p = to_pixel(b, xy[2 * i], xy[2 * i + 1], size, margin);
    const cv::Scalar colour = label_colour(labels.empty() ? 0 : labels[i]);
    cv::circle(plot, cv::Point(cvRound(p.x * 16), cvRound(p.y * 16)), radius * 16, colour, cv::FILLED, cv::LINE_AA, 4);
  }
  if (!options.title.empty()) {
    cv::putText(plot, options.title, cv::Point(margin, margin + 8), cv::FONT_HERSHEY_SIMPLEX, 0.6, cv::Scalar(0, 0, 0), 1,
                cv::LINE_AA);
  }
  if (legend) {
    const int line = std::clamp((size - 2 * margin) / std::max<int>(1, static_cast<int>(counts.size())), 10, 26);
    const double font = line / 40.0;
    int y = margin + line;
    for (const auto& [label, count] : counts) {
      if (y > size - margin) break;
      const std::string name =
          label < 0 ? "(none)" : (label < static_cast<int>(names.size()) ? names[label] : std::to_string(label));
      cv::rectangle(canvas, cv::Rect(size + 10, y - line / 2 - 5, line / 2 + 2, line / 2 + 2), label_colour(label),
                    cv::FILLED);
      cv::putText(canvas, name + " (" + std::to_string(count) + ")", cv::Point(size + 18 + line / 2, y),
                  cv::FONT_HERSHEY_SIMPLEX, font, cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
      y += line;
    }
  }
  return canvas;
}

cv::Mat render_image_map(const std::vector<float>& xy, const std::vector<cv::Mat>& thumbnails,
                         const std::vector<int>& labels, int size, int thumb_size) {
  const std::size_t n = xy.size() / 2;
  if (thumbnails.size() != n) throw UsageError("image map: thumbnails and points differ in number");
  cv::Mat canvas(size, size, CV_8UC3, cv::Scalar(255, 255, 255));
  const Bounds b = bounds_of(xy);
  const int margin = thumb_size / 2 + 2;
  for (std::size_t i = 0; i < n; ++i) {
    cv::Mat thumb = fit_thumbnail(thumbnails[i], thumb_size);
    if (!labels.empty()) {
      cv::rectangle(thumb, cv::Rect(0, 0, thumb.cols, thumb.rows), label_colour(labels[i]), std::max(1, thumb_size / 24));
    }
    const cv::Point2f p = to_pixel(b, xy[2 * i], xy[2 * i + 1], size, margin);
    paste(canvas, thumb, cvRound(p.x - thumb.cols / 2.0), cvRound(p.y - thumb.rows / 2.0));
  }
  return canvas;
}

cv::Mat render_grid_map(const std::vector<int>& cell, int columns, int rows, const std::vector<cv::Mat>& thumbnails,
                        const std::vector<int>& labels, int cell_size) {
  if (thumbnails.size() != cell.size()) throw UsageError("grid map: thumbnails and cells differ in number");
  cv::Mat canvas(rows * cell_size, columns * cell_size, CV_8UC3, cv::Scalar(255, 255, 255));
  for (std::size_t i = 0; i < cell.size(); ++i) {
    cv::Mat thumb = fit_thumbnail(thumbnails[i], cell_size);
    if (!labels.empty()) {
      cv::rectangle(thumb, cv::Rect(0, 0, thumb.cols, thumb.rows), label_colour(labels[i]), std::max(1, cell_size / 24));
    }
    const int r = cell[i] / columns, c = cell[i] % columns;
    // Grid rows count upwards like the plot's y axis.
    paste(canvas, thumb, c * cell_size + (cell_size - thumb.cols) / 2, (rows - 1 - r) * cell_size + (cell_size - thumb.rows) / 2);
  }
  return canvas;
}

void caption_grid_map(cv::Mat& canvas, const std::vector<int>& cell, int columns, int rows, int cell_size,
                      const std::vector<std::string>& captions) {
  if (captions.size() != cell.size()) throw UsageError("grid captions: captions and cells differ in number");
  const double font = std::clamp(cell_size / 180.0, 0.25, 0.6);
  int baseline = 0;
  const int text_h = cv::getTextSize("Ag", cv::FONT_HERSHEY_SIMPLEX, font, 1, &baseline).height + baseline + 2;
  for (std::size_t i = 0; i < cell.size(); ++i) {
    if (captions[i].empty()) continue;
    std::string text = captions[i];
    while (text.size() > 1 && cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, font, 1, &baseline).width > cell_size - 2) {
      text.pop_back();
    }
    const int r = cell[i] / columns, c = cell[i] % columns;
    const int x0 = c * cell_size, y1 = (rows - r) * cell_size;
    const cv::Rect band = cv::Rect(x0, y1 - text_h, cell_size, text_h) & cv::Rect(0, 0, canvas.cols, canvas.rows);
    if (band.empty()) continue;
    cv::Mat roi = canvas(band);
    cv::addWeighted(roi, 0.35, cv::Mat(roi.size(), roi.type(), cv::Scalar(255, 255, 255)), 0.65, 0, roi);
    cv::putText(canvas, text, cv::Point(x0 + 1, y1 - baseline - 1), cv::FONT_HERSHEY_SIMPLEX, font, cv::Scalar(0, 0, 0), 1,
                cv::LINE_AA);
  }
}

}  // namespace cnnvis
