// Heatmap overlays and captioned contact sheets. Everything here is RGB; OpenCV's drawing functions
// do not care about channel order, so no conversions are needed for text.
#include "cnnvis/io/render.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "cnnvis/core/errors.h"

namespace cnnvis {
namespace {

constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;
constexpr int kThickness = 1;
constexpr int kCaptionMargin = 3;  // pixels above and below a caption line
const cv::Scalar kTextColour(0, 0, 0);
const cv::Scalar kBackground(255, 255, 255);

// Hershey fonts draw ASCII only; every UTF-8 sequence becomes one '?' (not one per byte) and control
// characters become spaces, so that truncation never splits a character.
std::string ascii_for_drawing(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      out += (c < 0x20 || c == 0x7F) ? ' ' : static_cast<char>(c);
      ++i;
      continue;
    }
    out += '?';
    ++i;
    while (i < text.size() && (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) ++i;
  }
  return out;
}

int text_width(const std::string& text, double scale) {
  int baseline = 0;
  return cv::getTextSize(text, kFont, scale, kThickness, &baseline).width;
}

// The longest prefix of text that fits in max_width, with "..." appended when something was cut.
std::string fit_text(const std::string& text, double scale, int max_width) {
  if (text_width(text, scale) <= max_width) return text;
  const std::string ellipsis = "...";
  // The width grows with the prefix length, so binary-search the longest prefix that fits.
  std::size_t lo = 0, hi = text.size();
  while (lo < hi) {
    const std::size_t mid = (lo + hi + 1) / 2;
    if (text_width(text.substr(0, mid) + ellipsis, scale) <= max_width) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  const std::size_t keep = lo;
  if (keep == 0) return text_width(ellipsis, scale) <= max_width ? ellipsis : std::string();
  return text.substr(0, keep) + ellipsis;
}

// The largest scale in [min_scale, max_scale] (in steps of 0.05) at which every text fits max_width;
// min_scale when none does (the texts are then truncated).
double pick_scale(const std::vector<std::string>& texts, int max_width, double min_scale, double max_scale) {
  for (double scale = max_scale; scale > min_scale; scale -= 0.05) {
    bool fits = true;
    for (const auto& t : texts) {
      if (!t.empty() && text_width(t, scale) > max_width) {
        fits = false;
        break;
      }
    }
    if (fits) return scale;
  }
  return min_scale;
}

struct TextMetrics {
  int height = 0;    // cap height above the baseline
  int baseline = 0;  // descent below it
};

TextMetrics text_metrics(double scale) {
  TextMetrics m;
  m.height = cv::getTextSize("Ag", kFont, scale, kThickness, &m.baseline).height;
  return m;
}

struct SheetLayout {
  int columns = 1;
  int rows = 0;
  int padding = 0;
  int cell_w = 1;
  int cell_h = 1;
  bool has_captions = false;
  double caption_scale = 0.4;
  int caption_h = 0;  // height of the caption strip under each cell (0 without captions)
  std::string title;  // sanitised and truncated
  double title_scale = 0.7;
  int title_h = 0;    // height of the title block above the grid (0 without a title)
  cv::Size sheet;

  cv::Rect cell(std::size_t index) const {
    const int col = static_cast<int>(index % static_cast<std::size_t>(columns));
    const int row = static_cast<int>(index / static_cast<std::size_t>(columns));
    return cv::Rect(padding + col * (cell_w + padding), title_h + padding + row * (cell_h + caption_h + padding),
                    cell_w, cell_h);
  }
};

SheetLayout layout_sheet(const std::vector<SheetCell>& cells, const SheetOptions& options) {
  SheetLayout l;
  const int n = static_cast<int>(cells.size());
  l.padding = std::max(0, options.padding);
  l.columns = options.columns > 0 ? options.columns
                                  : std::max(1, static_cast<int>(std::ceil(std::sqrt(static_cast<double>(n)))));
  l.rows = (n + l.columns - 1) / l.columns;

  int widest = 0, tallest = 0;
  std::vector<std::string> captions;
  for (const auto& c : cells) {
    widest = std::max(widest, c.image.cols);
    tallest = std::max(tallest, c.image.rows);
    captions.push_back(ascii_for_drawing(c.caption));
    if (!c.caption.empty()) l.has_captions = true;
  }
  l.cell_w = std::max(1, options.cell_width > 0 ? options.cell_width : widest);
  l.cell_h = std::max(1, options.cell_height > 0 ? options.cell_height : tallest);

  if (l.has_captions) {
    // Text no larger than suits the cell (tiny cells get the smallest readable size), and as large as
    // lets every caption fit up to that.
    const double max_scale = std::clamp(l.cell_w / 300.0, 0.3, 0.6);
    l.caption_scale = pick_scale(captions, l.cell_w, 0.3, max_scale);
    const TextMetrics m = text_metrics(l.caption_scale);
    l.caption_h = m.height + m.baseline + 2 * kCaptionMargin;
  }

  l.sheet.width = l.padding + l.columns * (l.cell_w + l.padding);
  if (!options.title.empty()) {
    const int available = std::max(1, l.sheet.width - 2 * l.padding);
    const std::string title = ascii_for_drawing(options.title);
    l.title_scale = pick_scale({title}, available, 0.35, 0.9);
    l.title = fit_text(title, l.title_scale, available);
    const TextMetrics m = text_metrics(l.title_scale);
    l.title_h = l.padding + m.height + m.baseline;
  }
  l.sheet.height = l.title_h + l.padding + l.rows * (l.cell_h + l.caption_h + l.padding);
  return l;
}

cv::Mat as_rgb8(const cv::Mat& image) {
  if (image.depth() != CV_8U) throw UsageError("contact sheet images must be 8-bit");
  cv::Mat rgb;
  switch (image.channels()) {
    case 1:
      cv::cvtColor(image, rgb, cv::COLOR_GRAY2RGB);
      return rgb;
    case 3:
      return image;
    case 4:
      cv::cvtColor(image, rgb, cv::COLOR_RGBA2RGB);
      return rgb;
    default:
      throw UsageError(fmt::format("contact sheet images need 1, 3 or 4 channels, got {}", image.channels()));
  }
}

}  // namespace

cv::Mat overlay_heatmap(const cv::Mat& image_rgb8, const cv::Mat& map01, Colormap map, float alpha) {
  if (image_rgb8.empty() || map01.empty()) throw UsageError("overlay_heatmap needs a non-empty image and map");
  if (map01.channels() != 1) throw UsageError("overlay_heatmap needs a single-channel map");
  const cv::Mat image = as_rgb8(image_rgb8);

  cv::Mat cam;
  map01.convertTo(cam, CV_32F);
  if (cam.size() != image.size()) {
    cv::Mat resized;
    cv::resize(cam, resized, image.size(), 0, 0, cv::INTER_LINEAR);
    cam = resized;
  }
  const float a = std::isfinite(alpha) ? std::clamp(alpha, 0.0f, 1.0f) : 0.5f;
  const float b = 1.0f - a;

  // Colour index = uint8(255 * cam): pytorch-grad-cam truncates here (np.uint8), and matching it keeps
  // overlays comparable with the Python reference; apply_colormap rounds instead.
  cv::Vec3b lut[256];
  for (int i = 0; i < 256; ++i) lut[i] = colormap_rgb(map, i / 255.0f);

  cv::Mat blended(image.size(), CV_32FC3);
  float peak = 0.0f;
  for (int y = 0; y < image.rows; ++y) {
    const float* c = cam.ptr<float>(y);
    const cv::Vec3b* px = image.ptr<cv::Vec3b>(y);
    cv::Vec3f* out = blended.ptr<cv::Vec3f>(y);
    for (int x = 0; x < image.cols; ++x) {
      const float v = c[x];
      const int index = !(v > 0.0f) ? 0 : v >= 1.0f ? 255 : static_cast<int>(v * 255.0f);
      const cv::Vec3b& heat = lut[index];
      for (int k = 0; k < 3; ++k) {
        const float value = a * (heat[k] / 255.0f) + b * (px[x][k] / 255.0f);
        out[x][k] = value;
        peak = std::max(peak, value);
      }
    }
  }

  // Rescale so that the brightest value is 1, then uint8(255 * v) (truncating, as numpy does).
  cv::Mat result(image.size(), CV_8UC3, cv::Scalar::all(0));
  if (!(peak > 0.0f)) return result;
  for (int y = 0; y < image.rows; ++y) {
    const cv::Vec3f* in = blended.ptr<cv::Vec3f>(y);
    cv::Vec3b* out = result.ptr<cv::Vec3b>(y);
    for (int x = 0; x < image.cols; ++x) {
      for (int k = 0; k < 3; ++k) {
        const float v = 255.0f * (in[x][k] / peak);
        out[x][k] = static_cast<std::uint8_t>(std::clamp(v, 0.0f, 255.0f));
      }
    }
  }
  return result;
}

cv::Mat make_contact_sheet(const std::vector<SheetCell>& cells, const SheetOptions& options) {
  const SheetLayout l = layout_sheet(cells, options);
  cv::Mat sheet(l.sheet, CV_8UC3, kBackground);

  if (!l.title.empty()) {
    const TextMetrics m = text_metrics(l.title_scale);
    cv::putText(sheet, l.title, cv::Point(l.padding, l.padding + m.height), kFont, l.title_scale, kTextColour,
                kThickness, cv::LINE_AA);
  }

  const TextMetrics caption_metrics = text_metrics(l.caption_scale);
  for (std::size_t i = 0; i < cells.size(); ++i) {
    const cv::Rect cell = l.cell(i);
    const SheetCell& c = cells[i];
    if (!c.image.empty()) {
      const cv::Mat image = as_rgb8(c.image);
      const double fit = std::min(static_cast<double>(l.cell_w) / image.cols, static_cast<double>(l.cell_h) / image.rows);
      const int w = std::clamp(static_cast<int>(std::lround(image.cols * fit)), 1, l.cell_w);
      const int h = std::clamp(static_cast<int>(std::lround(image.rows * fit)), 1, l.cell_h);
      cv::Mat scaled;
      if (w == image.cols && h == image.rows) {
        scaled = image;
      } else {
        // Area averaging when shrinking; blocky nearest-neighbour when enlarging a lot, so that small
        // maps and filters show their actual pixels; bilinear in between.
        const int interpolation = fit < 1.0 ? cv::INTER_AREA : fit >= 2.0 ? cv::INTER_NEAREST : cv::INTER_LINEAR;
        cv::resize(image, scaled, cv::Size(w, h), 0, 0, interpolation);
      }
      scaled.copyTo(sheet(cv::Rect(cell.x + (l.cell_w - w) / 2, cell.y + (l.cell_h - h) / 2, w, h)));
    }
    if (!c.caption.empty()) {
      const std::string text = fit_text(ascii_for_drawing(c.caption), l.caption_scale, l.cell_w);
      if (text.empty()) continue;
      const int width = text_width(text, l.caption_scale);
      const cv::Point origin(cell.x + std::max(0, (l.cell_w - width) / 2),
                             cell.y + l.cell_h + kCaptionMargin + caption_metrics.height);
      cv::putText(sheet, text, origin, kFont, l.caption_scale, kTextColour, kThickness, cv::LINE_AA);
    }
  }
  return sheet;
}

cv::Rect contact_sheet_cell_rect(const std::vector<SheetCell>& cells, const SheetOptions& options, std::size_t index) {
  return layout_sheet(cells, options).cell(index);
}

}  // namespace cnnvis
