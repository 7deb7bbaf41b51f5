// The training movie's pictures: a layer's activation maps on the fixed samples as one frame, and the
// loss/accuracy curves.
#include "cnnvis/methods/movie_frames.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <opencv2/imgproc.hpp>

#include "cnnvis/core/errors.h"
#include "cnnvis/io/colormap.h"

namespace cnnvis {

namespace {

const cv::Scalar kBlack(0, 0, 0);
const cv::Scalar kWhite(255, 255, 255);
const cv::Scalar kGrey(120, 120, 120);
constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;
constexpr int kHeaderGap = 6;     // extra space between the sample row and the channel rows
constexpr int kLegendHeight = 26; // colour bar with the scale under the grid

std::string format_number(double value, const char* format = "%.3g") {
  char text[32];
  std::snprintf(text, sizeof(text), format, value);
  return text;
}

void put_text(cv::Mat& image, const std::string& text, cv::Point origin, double scale = 0.42,
              const cv::Scalar& colour = kBlack) {
  cv::putText(image, text, origin, kFont, scale, colour, 1, cv::LINE_AA);
}

int channel_rows_top(const ActivationFrameStyle& s) { return s.title_height + s.gap + s.cell + kHeaderGap; }

// A float map scaled to a cell: area averaging when shrinking (keeps exact zeros zero), nearest
// neighbour when enlarging so that a coarse layer's units stay visible as blocks.
cv::Mat fit_map(const cv::Mat& map, int cell) {
  if (map.rows == cell && map.cols == cell) return map;
  cv::Mat out;
  const bool shrink = map.rows > cell || map.cols > cell;
  cv::resize(map, out, cv::Size(cell, cell), 0, 0, shrink ? cv::INTER_AREA : cv::INTER_NEAREST);
  return out;
}

}  // namespace

cv::Rect activation_frame_cell(std::size_t sample, std::size_t channel_row, const ActivationFrameStyle& style) {
  const int step = style.cell + style.gap;
  return cv::Rect(style.label_width + static_cast<int>(sample) * step,
                  channel_rows_top(style) + static_cast<int>(channel_row) * step, style.cell, style.cell);
}

cv::Mat render_activation_frame(const std::vector<cv::Mat>& samples, const std::vector<std::vector<cv::Mat>>& maps,
                                const std::vector<int>& channel_ids, const std::string& layer, std::int64_t step,
                                float scale, const ActivationFrameStyle& style) {
  if (samples.empty() || maps.size() != samples.size())
    throw UsageError("render_activation_frame: need one list of maps per sample image");
  const std::size_t channels = channel_ids.size();
  for (const auto& per_sample : maps) {
    if (per_sample.size() != channels)
      throw UsageError("render_activation_frame: every sample needs one map per shown channel");
    for (const cv::Mat& m : per_sample) {
      if (m.empty() || m.type() != CV_32F) throw UsageError("render_activation_frame: maps must be CV_32F");
    }
  }
  if (style.cell < 4 || style.gap < 0 || style.label_width < 0 || style.title_height < 0)
    throw UsageError("render_activation_frame: bad frame style");

  // One symmetric scale for the whole frame so that cells can be compared with each other.
  if (!(scale > 0.0f)) {
    double max_abs = 0;
    for (const auto& per_sample : maps) {
      for (const cv::Mat& m : per_sample) {
        double lo = 0, hi = 0;
        cv::minMaxLoc(m, &lo, &hi);
        max_abs = std::max({max_abs, std::abs(lo), std::abs(hi)});
      }
    }
    scale = static_cast<float>(max_abs);
  }
  // All-zero frame (e.g. a dead layer): any positive scale renders it white.
  const float used_scale = scale > 0.0f ? scale : 1.0f;

  const int pitch = style.cell + style.gap;
  const int width = style.label_width + static_cast<int>(samples.size()) * pitch;
  const int height = channel_rows_top(style) + static_cast<int>(channels) * pitch + kLegendHeight;
  cv::Mat frame(height, width, CV_8UC3, kWhite);

  put_text(frame, layer + "   step " + std::to_string(step), cv::Point(4, style.title_height - 7), 0.5);

  // Header row: the sample images.
  for (std::size_t s = 0; s < samples.size(); ++s) {
    cv::Mat rgb = samples[s];
    if (rgb.type() == CV_8UC1) cv::cvtColor(rgb, rgb, cv::COLOR_GRAY2RGB);
    if (rgb.type() != CV_8UC3) throw UsageError("render_activation_frame: sample images must be 8-bit RGB");
    cv::Mat cell;
    cv::resize(rgb, cell, cv::Size(style.cell, style.cell), 0, 0, cv::INTER_AREA);
    const cv::Rect r(style.label_width + static_cast<int>(s) * pitch, style.title_height + style.gap, style.cell,
                     style.cell);
    cell.copyTo(frame(r));
  }

  for (std::size_t c = 0; c < channels; ++c) {
    const cv::Rect first = activation_frame_cell(0, c, style);
    put_text(frame, "c" + std::to_string(channel_ids[c]), cv::Point(3, first.y + style.cell / 2 + 5), 0.38);
    for (std::size_t s = 0; s < samples.size(); ++s) {
      const cv::Mat coloured = apply_diverging(fit_map(maps[s][c], style.cell), used_scale);
      coloured.copyTo(frame(activation_frame_cell(s, c, style)));
    }
  }

  // Legend: the colour bar from -scale (red) through 0 (white) to +scale (blue).
  const int bar_y = height - kLegendHeight + 6;
  const int bar_x0 = style.label_width + 44, bar_x1 = width - 50;
  if (bar_x1 > bar_x0 + 10) {
    for (int x = bar_x0; x <= bar_x1; ++x) {
      const float t = static_cast<float>(x - bar_x0) / static_cast<float>(bar_x1 - bar_x0);
      const cv::Vec3b c = colormap_rgb(Colormap::diverging, t);
      cv::line(frame, cv::Point(x, bar_y), cv::Point(x, bar_y + 10), cv::Scalar(c[0], c[1], c[2]));
    }
    put_text(frame, "-" + format_number(used_scale), cv::Point(3, bar_y + 10), 0.36);
    put_text(frame, "+" + format_number(used_scale), cv::Point(bar_x1 + 4, bar_y + 10), 0.36);
  }
  return frame;
}

// ---------------------------------------------------------------------------------------------------
// Curves

namespace {

struct Panel {
  cv::Rect area;  // plotting area inside the axes
  double x_max, y_min, y_max;
  cv::Point map(double x, double y) const {
    const double fx = x_max > 0 ? x / x_max : 0;
    const double fy = y_max > y_min ? (y - y_min) / (y_max - y_min) : 0;
    return cv::Point(area.x + static_cast<int>(std::lround(fx * area.width)),
                     area.y + area.height - static_cast<int>(std::lround(fy * area.height)));
  }
};

void draw_axes(cv::Mat& image, const Panel& p, const std::string& title, const std::string& y_label,
               const char* y_format) {
  cv::rectangle(image, p.area, kBlack, 1);
  for (int i = 0; i <= 4; ++i) {
    const double y = p.y_min + (p.y_max - p.y_min) * i / 4.0;
    const cv::Point at = p.map(0, y);
    cv::line(image, at, at + cv::Point(-4, 0), kBlack);
    if (i > 0 && i < 4) cv::line(image, at + cv::Point(1, 0), cv::Point(p.area.x + p.area.width - 1, at.y), cv::Scalar(225, 225, 225));
    put_text(image, format_number(y, y_format), at + cv::Point(-44, 4), 0.36);
    const double x = p.x_max * i / 4.0;
    const cv::Point bx = p.map(x, p.y_min);
    cv::line(image, bx, bx + cv::Point(0, 4), kBlack);
    put_text(image, format_number(x, "%.0f"), bx + cv::Point(-10, 18), 0.36);
  }
  put_text(image, title, cv::Point(p.area.x + p.area.width / 2 - 50, p.area.y - 10), 0.5);
  put_text(image, "step", cv::Point(p.area.x + p.area.width / 2 - 14, p.area.y + p.area.height + 36), 0.42);
  // Vertical axis label, drawn horizontally above the tick labels (OpenCV has no rotated text).
  put_text(image, y_label, cv::Point(p.area.x - 50, p.area.y - 14), 0.38, kGrey);
}

}  // namespace

cv::Mat render_training_curves(const std::vector<TrainCurvePoint>& curve, const std::vector<TestAccuracyPoint>& test) {
  const int panel_w = 400, panel_h = 260, left = 60, top = 44, between = 90;
  cv::Mat image(top + panel_h + 50, left + 2 * panel_w + between + 20, CV_8UC3, kWhite);
  double x_max = 1, loss_max = 0;
  for (const auto& p : curve) {
    x_max = std::max(x_max, static_cast<double>(p.step));
    if (std::isfinite(p.loss)) loss_max = std::max(loss_max, p.loss);
  }
  for (const auto& p : test) x_max = std::max(x_max, static_cast<double>(p.step));
  if (!(loss_max > 0)) loss_max = 1;

  const Panel loss_panel{cv::Rect(left, top, panel_w, panel_h), x_max, 0.0, loss_max * 1.05};
  const Panel acc_panel{cv::Rect(left + panel_w + between, top, panel_w, panel_h), x_max, 0.0, 1.0};
  draw_axes(image, loss_panel, "training loss", "loss", "%.2f");
  draw_axes(image, acc_panel, "accuracy", "accuracy", "%.2f");

  const cv::Scalar train_colour(33, 102, 172), test_colour(178, 24, 43);  // RGB: blue, red
  for (std::size_t i = 1; i < curve.size(); ++i) {
    cv::line(image, loss_panel.map(curve[i - 1].step, curve[i - 1].loss), loss_panel.map(curve[i].step, curve[i].loss),
             train_colour, 2, cv::LINE_AA);
    cv::line(image, acc_panel.map(curve[i - 1].step, curve[i - 1].accuracy),
             acc_panel.map(curve[i].step, curve[i].accuracy), train_colour, 2, cv::LINE_AA);
  }
  if (curve.size() == 1) {
    cv::circle(image, loss_panel.map(curve[0].step, curve[0].loss), 3, train_colour, cv::FILLED, cv::LINE_AA);
    cv::circle(image, acc_panel.map(curve[0].step, curve[0].accuracy), 3, train_colour, cv::FILLED, cv::LINE_AA);
  }
  for (const auto& p : test) {
    const cv::Point at = acc_panel.map(p.step, p.accuracy);
    cv::circle(image, at, 5, test_colour, cv::FILLED, cv::LINE_AA);
    put_text(image, format_number(p.accuracy, "%.3f"), at + cv::Point(-44, -8), 0.38, test_colour);
  }
  // Legend inside the accuracy panel (bottom right, where accuracy rarely is).
  const cv::Point legend(acc_panel.area.x + acc_panel.area.width - 150, acc_panel.area.y + acc_panel.area.height - 36);
  cv::line(image, legend, legend + cv::Point(20, 0), train_colour, 2, cv::LINE_AA);
  put_text(image, "train (batches)", legend + cv::Point(26, 4), 0.38);
  cv::circle(image, legend + cv::Point(10, 18), 5, test_colour, cv::FILLED, cv::LINE_AA);
  put_text(image, "test (per epoch)", legend + cv::Point(26, 22), 0.38);
  return image;
}

}  // namespace cnnvis
