// The training movie: conv activations of fixed samples rendered per layer and step, PNG frames, an
// animated GIF per layer (own GIF89a/LZW encoder: the project links no OpenCV video module), and the
// loss/accuracy curves.
#include "cnnvis/methods/training_movie.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>
#include <spdlog/spdlog.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/io/colormap.h"
#include "cnnvis/io/image_io.h"
#include "cnnvis/io/idx.h"
#include "cnnvis/methods/tensor_image.h"
#include "cnnvis/models/network.h"
#include "cnnvis/models/registry.h"

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

// ---------------------------------------------------------------------------------------------------
// GIF

namespace {

constexpr int kRampEntries = 129;  // t = i / 128: index 64 is t = 0.5, exactly white

// Nearest palette entry for every colour quantised to 6 bits per channel.
std::vector<std::uint8_t> build_lookup(const std::vector<cv::Vec3b>& palette) {
  {
    std::vector<std::uint8_t> table(1u << 18);
    for (int r = 0; r < 64; ++r) {
      for (int g = 0; g < 64; ++g) {
        for (int b = 0; b < 64; ++b) {
          const int cr = r * 4 + 2, cg = g * 4 + 2, cb = b * 4 + 2;  // bin centre
          int best = 0, best_d = 1 << 30;
          for (std::size_t i = 0; i < palette.size(); ++i) {
            const int dr = cr - palette[i][0], dg = cg - palette[i][1], db = cb - palette[i][2];
            const int d = dr * dr + dg * dg + db * db;
            if (d < best_d) {
              best_d = d;
              best = static_cast<int>(i);
            }
          }
          table[(static_cast<std::size_t>(r) << 12) | (static_cast<std::size_t>(g) << 6) | static_cast<std::size_t>(b)] =
              static_cast<std::uint8_t>(best);
        }
      }
    }
    return table;
  }
}

const std::vector<std::uint8_t>& palette_lookup() {
  static const std::vector<std::uint8_t> lut = build_lookup(movie_palette());
  return lut;
}

const std::vector<std::uint8_t>& image_palette_lookup() {
  static const std::vector<std::uint8_t> lut = build_lookup(image_palette());
  return lut;
}

// Exact matches first: the ramp's colours (white above all) must survive quantisation unchanged, and
// the 6-bit bins alone could map a ramp colour to a neighbouring entry.
struct ExactColours {
  std::vector<std::pair<std::uint32_t, std::uint8_t>> sorted;  // packed RGB -> index
  ExactColours() {
    const auto& palette = movie_palette();
    for (std::size_t i = 0; i < palette.size(); ++i) {
      const std::uint32_t key = (static_cast<std::uint32_t>(palette[i][0]) << 16) |
                                (static_cast<std::uint32_t>(palette[i][1]) << 8) | palette[i][2];
      sorted.emplace_back(key, static_cast<std::uint8_t>(i));
    }
    std::stable_sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  }
  int find(std::uint32_t key) const {
    auto it = std::lower_bound(sorted.begin(), sorted.end(), key,
                               [](const auto& entry, std::uint32_t k) { return entry.first < k; });
    return it != sorted.end() && it->first == key ? it->second : -1;
  }
};

void put_u16(std::ofstream& out, int value) {
  const char bytes[2] = {static_cast<char>(value & 0xFF), static_cast<char>((value >> 8) & 0xFF)};
  out.write(bytes, 2);
}

class BitWriter {
 public:
  void write(int code, int bits) {
    buffer_ |= static_cast<std::uint32_t>(code) << count_;
    count_ += bits;
    while (count_ >= 8) {
      bytes_.push_back(static_cast<std::uint8_t>(buffer_ & 0xFF));
      buffer_ >>= 8;
      count_ -= 8;
    }
  }
  std::vector<std::uint8_t> finish() {
    if (count_ > 0) bytes_.push_back(static_cast<std::uint8_t>(buffer_ & 0xFF));
    buffer_ = 0;
    count_ = 0;
    return std::move(bytes_);
  }

 private:
  std::vector<std::uint8_t> bytes_;
  std::uint32_t buffer_ = 0;
  int count_ = 0;
};

}  // namespace

const std::vector<cv::Vec3b>& movie_palette() {
  static const std::vector<cv::Vec3b> palette = [] {
    std::vector<cv::Vec3b> p;
    for (int i = 0; i < kRampEntries; ++i) {
      p.push_back(colormap_rgb(Colormap::diverging, static_cast<float>(i) / (kRampEntries - 1)));
    }
    for (int r = 0; r < 5; ++r)
      for (int g = 0; g < 5; ++g)
        for (int b = 0; b < 5; ++b)
          p.emplace_back(static_cast<uchar>(r * 255 / 4), static_cast<uchar>(g * 255 / 4), static_cast<uchar>(b * 255 / 4));
    p.emplace_back(96, 96, 96);
    p.emplace_back(160, 160, 160);
    return p;
  }();
  return palette;
}

const std::vector<cv::Vec3b>& image_palette() {
  static const std::vector<cv::Vec3b> palette = [] {
    std::vector<cv::Vec3b> p;
    for (int r = 0; r < 6; ++r)
      for (int g = 0; g < 7; ++g)
        for (int b = 0; b < 6; ++b)
          p.emplace_back(static_cast<uchar>(r * 255 / 5), static_cast<uchar>(g * 255 / 6), static_cast<uchar>(b * 255 / 5));
    for (int v : {64, 128, 160, 224}) p.emplace_back(static_cast<uchar>(v), static_cast<uchar>(v), static_cast<uchar>(v));
    return p;
  }();
  return palette;
}

std::vector<std::uint8_t> gif_lzw_encode(const std::vector<std::uint8_t>& indices) {
  constexpr int kMinCodeSize = 8;
  constexpr int kClear = 1 << kMinCodeSize, kEnd = kClear + 1, kMaxCode = 4095;
  // Dictionary of (prefix code, next byte) -> code, dense: 4096 x 256 entries, -1 = absent.
  std::vector<std::int16_t> dictionary(static_cast<std::size_t>(kMaxCode + 1) * 256, -1);
  BitWriter bits;
  int code_size = kMinCodeSize + 1;
  int last_code = kEnd;  // the last code assigned
  bits.write(kClear, code_size);
  if (!indices.empty()) {
    int prefix = indices[0];
    for (std::size_t i = 1; i < indices.size(); ++i) {
      const int k = indices[i];
      std::int16_t& slot = dictionary[static_cast<std::size_t>(prefix) * 256 + static_cast<std::size_t>(k)];
      if (slot >= 0) {
        prefix = slot;
        continue;
      }
      bits.write(prefix, code_size);
      slot = static_cast<std::int16_t>(++last_code);
      // The decoder adds its entries one code later than the encoder, so it widens its codes when its
      // next free code reaches 2^size: for the encoder that is when the code just assigned equals 2^size.
      if (last_code >= (1 << code_size) && code_size < 12) ++code_size;
      if (last_code == kMaxCode) {
        bits.write(kClear, code_size);
        std::fill(dictionary.begin(), dictionary.end(), std::int16_t{-1});
        code_size = kMinCodeSize + 1;
        last_code = kEnd;
      }
      prefix = k;
    }
    bits.write(prefix, code_size);
    // The decoder still adds one entry on reading that last code; if that fills the current width it
    // reads the end code one bit wider.
    if (last_code > kEnd && last_code + 1 >= (1 << code_size) && code_size < 12) ++code_size;
  }
  bits.write(kEnd, code_size);
  const std::vector<std::uint8_t> packed = bits.finish();

  std::vector<std::uint8_t> out;
  out.reserve(packed.size() + packed.size() / 255 + 3);
  out.push_back(static_cast<std::uint8_t>(kMinCodeSize));
  for (std::size_t pos = 0; pos < packed.size(); pos += 255) {
    const std::size_t n = std::min<std::size_t>(255, packed.size() - pos);
    out.push_back(static_cast<std::uint8_t>(n));
    out.insert(out.end(), packed.begin() + static_cast<std::ptrdiff_t>(pos),
               packed.begin() + static_cast<std::ptrdiff_t>(pos + n));
  }
  out.push_back(0);
  return out;
}

GifWriter::GifWriter(const std::string& path, int width, int height, int delay_cs)
    : GifWriter(path, width, height, delay_cs, false) {}

GifWriter::GifWriter(const std::string& path, int width, int height, int delay_cs, bool photo_frames)
    : path_(path), width_(width), height_(height), delay_cs_(delay_cs), photo_(photo_frames) {
  if (width < 1 || height < 1 || width > 65535 || height > 65535)
    throw UsageError(path + ": GIF size " + std::to_string(width) + "x" + std::to_string(height) + " is out of range");
  out_.open(path, std::ios::binary | std::ios::trunc);
  if (!out_) throw OutputError(path + ": cannot open for writing");
  out_.write("GIF89a", 6);
  put_u16(out_, width);
  put_u16(out_, height);
  // Global colour table of 2^(7+1) entries, 8 bits per primary.
  const char screen[3] = {static_cast<char>(0xF7), 0, 0};
  out_.write(screen, 3);
  for (const cv::Vec3b& c : photo_ ? image_palette() : movie_palette()) {
    const char rgb[3] = {static_cast<char>(c[0]), static_cast<char>(c[1]), static_cast<char>(c[2])};
    out_.write(rgb, 3);
  }
  // NETSCAPE2.0 application extension: loop forever.
  const char loop[19] = {0x21, static_cast<char>(0xFF), 0x0B, 'N', 'E', 'T', 'S', 'C', 'A', 'P',
                         'E', '2', '.', '0', 0x03, 0x01, 0x00, 0x00, 0x00};
  out_.write(loop, sizeof(loop));
  if (!out_) throw OutputError(path + ": write failed");
}

GifWriter::~GifWriter() {
  try {
    close();
  } catch (...) {
    // A destructor cannot report; close() is called explicitly on the normal path.
  }
}

void GifWriter::add_frame(const cv::Mat& frame_rgb) {
  if (closed_) throw UsageError(path_ + ": GIF already closed");
  if (frame_rgb.type() != CV_8UC3 || frame_rgb.cols != width_ || frame_rgb.rows != height_)
    throw UsageError(path_ + ": GIF frames must be " + std::to_string(width_) + "x" + std::to_string(height_) +
                     " 8-bit RGB");
  static const ExactColours exact;
  const auto& lut = palette_lookup();
  std::vector<std::uint8_t> indices(static_cast<std::size_t>(width_) * height_);
  std::size_t n = 0;
  if (photo_) {
    // Ordered dithering: a fixed threshold per pixel position, about one cube step wide.
    static const int bayer[4][4] = {{0, 8, 2, 10}, {12, 4, 14, 6}, {3, 11, 1, 9}, {15, 7, 13, 5}};
    const auto& photo_lut = image_palette_lookup();
    for (int y = 0; y < height_; ++y) {
      const auto* row = frame_rgb.ptr<cv::Vec3b>(y);
      for (int x = 0; x < width_; ++x) {
        const int offset = (bayer[y & 3][x & 3] * 2 - 15) * 45 / 32;  // -21..21
        const auto q = [&](int v) { return static_cast<std::size_t>(std::clamp(v + offset, 0, 255) >> 2); };
        indices[n++] = photo_lut[(q(row[x][0]) << 12) | (q(row[x][1]) << 6) | q(row[x][2])];
      }
    }
  }
  for (int y = 0; y < height_ && !photo_; ++y) {
    const auto* row = frame_rgb.ptr<cv::Vec3b>(y);
    for (int x = 0; x < width_; ++x) {
      const cv::Vec3b& p = row[x];
      const std::uint32_t key = (static_cast<std::uint32_t>(p[0]) << 16) | (static_cast<std::uint32_t>(p[1]) << 8) | p[2];
      const int hit = exact.find(key);
      indices[n++] = hit >= 0 ? static_cast<std::uint8_t>(hit)
                              : lut[(static_cast<std::size_t>(p[0] >> 2) << 12) |
                                    (static_cast<std::size_t>(p[1] >> 2) << 6) | static_cast<std::size_t>(p[2] >> 2)];
    }
  }
  // Graphic control extension: no disposal (each frame covers the whole screen), delay, no transparency.
  const char gce[8] = {0x21, static_cast<char>(0xF9), 0x04, 0x04, static_cast<char>(delay_cs_ & 0xFF),
                       static_cast<char>((delay_cs_ >> 8) & 0xFF), 0x00, 0x00};
  out_.write(gce, sizeof(gce));
  out_.put(0x2C);
  put_u16(out_, 0);
  put_u16(out_, 0);
  put_u16(out_, width_);
  put_u16(out_, height_);
  out_.put(0x00);  // no local colour table, not interlaced
  const std::vector<std::uint8_t> data = gif_lzw_encode(indices);
  out_.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  if (!out_) throw OutputError(path_ + ": write failed");
  ++frames_;
}

void GifWriter::close() {
  if (closed_) return;
  closed_ = true;
  out_.put(0x3B);
  out_.close();
  if (!out_) throw OutputError(path_ + ": write failed");
}

int count_gif_frames(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return -1;
  std::vector<std::uint8_t> d((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (d.size() < 13 || std::memcmp(d.data(), "GIF89a", 6) != 0) return -1;
  std::size_t pos = 13;
  if (d[10] & 0x80) pos += 3u * (1u << ((d[10] & 0x07) + 1));
  // Skips data sub-blocks up to and including the terminator; false when the file ends first.
  const auto skip_blocks = [&](std::size_t& p) {
    while (p < d.size()) {
      const std::size_t n = d[p++];
      if (n == 0) return true;
      p += n;
    }
    return false;
  };
  int images = 0, controls = 0;
  while (pos < d.size()) {
    const std::uint8_t tag = d[pos++];
    if (tag == 0x3B) return controls == images ? images : -1;
    if (tag == 0x21) {
      if (pos >= d.size()) return -1;
      if (d[pos] == 0xF9) ++controls;
      ++pos;
      if (!skip_blocks(pos)) return -1;
    } else if (tag == 0x2C) {
      if (pos + 9 > d.size()) return -1;
      const std::uint8_t packed = d[pos + 8];
      pos += 9;
      if (packed & 0x80) pos += 3u * (1u << ((packed & 0x07) + 1));
      if (pos >= d.size()) return -1;
      ++pos;  // LZW minimum code size
      if (!skip_blocks(pos)) return -1;
      ++images;
    } else {
      return -1;
    }
  }
  return -1;  // no trailer
}

// ---------------------------------------------------------------------------------------------------
// Recorder

struct TrainingMovie::Impl {
  at::Tensor input;
  std::vector<cv::Mat> sample_images;
  std::vector<std::string> titles;
  std::vector<std::unique_ptr<GifWriter>> gifs;
  int max_channels = 16;
};

namespace {

// Restores the network's mode however the recording ends.
class TrainingModeGuard {
 public:
  explicit TrainingModeGuard(Network& network) : network_(network), was_(network.training()) {}
  ~TrainingModeGuard() { network_.set_training(was_); }
  TrainingModeGuard(const TrainingModeGuard&) = delete;
  TrainingModeGuard& operator=(const TrainingModeGuard&) = delete;

 private:
  Network& network_;
  bool was_;
};

void make_directory(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (!std::filesystem::is_directory(dir)) throw OutputError(dir.string() + ": cannot create directory (" + ec.message() + ")");
}

}  // namespace

TrainingMovie::TrainingMovie(const std::string& dir, const Network& network, std::vector<MovieSample> samples,
                             const std::string& device, int max_channels)
    : impl_(std::make_unique<Impl>()), dir_(dir) {
  if (samples.empty()) throw UsageError("training movie: no sample images");
  if (max_channels < 1) throw UsageError("training movie: max_channels must be at least 1");
  impl_->max_channels = max_channels;
  for (const Node* node : network.nodes()) {
    if (node->type() != "Conv2d") continue;
    layers_.push_back(node->name());
    // "features.0 (conv1)": the alias is the name people know the layer by.
    std::string title = node->name();
    for (const auto& [alias, target] : network.aliases()) {
      if (target == node->name() && alias.rfind("conv", 0) == 0) title += " (" + alias + ")";
    }
    impl_->titles.push_back(title);
  }
  if (layers_.empty()) throw UsageError("training movie: the network has no Conv2d layers");

  ModelCard card = default_model_card("fashion_vgg");
  card.input_height = samples.front().rgb.rows;
  card.input_width = samples.front().rgb.cols;
  std::vector<cv::Mat> inputs;
  for (const MovieSample& s : samples) {
    cv::Mat f;
    s.rgb.convertTo(f, CV_32FC3, 1.0 / 255.0);
    inputs.push_back(f);
    impl_->sample_images.push_back(s.rgb);
  }
  impl_->input = images_to_tensor(inputs, card, at::Device(device));

  make_directory(dir);
  for (const std::string& layer : layers_) make_directory(std::filesystem::path(dir) / layer);
}

TrainingMovie::~TrainingMovie() = default;

void TrainingMovie::record(Network& network, std::int64_t step) {
  ForwardRequest request;
  request.taps = layers_;
  request.need_logits = false;
  ForwardResult result;
  {
    TrainingModeGuard mode(network);
    network.set_training(false);
    at::NoGradGuard no_grad;
    result = network.forward(impl_->input, request);
  }
  const std::size_t frame_index = steps_.size();
  char frame_name[32];
  std::snprintf(frame_name, sizeof(frame_name), "frame_%05zu.png", frame_index);
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    const at::Tensor maps = result.taps.at(layers_[l]).detach().to(at::kCPU, at::kFloat);
    const std::int64_t channels = std::min<std::int64_t>(maps.size(1), impl_->max_channels);
    std::vector<int> ids;
    for (std::int64_t c = 0; c < channels; ++c) ids.push_back(static_cast<int>(c));
    std::vector<std::vector<cv::Mat>> per_sample(static_cast<std::size_t>(maps.size(0)));
    for (std::int64_t s = 0; s < maps.size(0); ++s) {
      for (std::int64_t c = 0; c < channels; ++c) per_sample[static_cast<std::size_t>(s)].push_back(tensor_to_map(maps[s][c]));
    }
    const cv::Mat frame = render_activation_frame(impl_->sample_images, per_sample, ids, impl_->titles[l], step);
    const std::string png = (std::filesystem::path(dir_) / layers_[l] / frame_name).string();
    write_png(png, frame);
    files_.push_back(png);
    if (impl_->gifs.size() <= l) {
      const std::string gif = (std::filesystem::path(dir_) / (layers_[l] + ".gif")).string();
      impl_->gifs.push_back(std::make_unique<GifWriter>(gif, frame.cols, frame.rows, 25));
    }
    impl_->gifs[l]->add_frame(frame);
  }
  steps_.push_back(step);
}

std::vector<std::string> TrainingMovie::finish(const std::vector<TrainCurvePoint>& curve,
                                               const std::vector<TestAccuracyPoint>& test) {
  for (auto& gif : impl_->gifs) {
    gif->close();
    files_.push_back(gif->path());
  }
  const std::string png = (std::filesystem::path(dir_) / "curves.png").string();
  write_png(png, render_training_curves(curve, test));
  files_.push_back(png);

  nlohmann::json points = nlohmann::json::array();
  for (const auto& p : curve)
    points.push_back({{"step", p.step}, {"epoch", p.epoch}, {"loss", p.loss}, {"accuracy", p.accuracy}});
  nlohmann::json tests = nlohmann::json::array();
  for (const auto& p : test) tests.push_back({{"step", p.step}, {"epoch", p.epoch}, {"accuracy", p.accuracy}});
  nlohmann::json doc = {{"train", std::move(points)},
                        {"test", std::move(tests)},
                        {"frame_steps", steps_},
                        {"layers", layers_},
                        {"classes", fashion_mnist_class_names()}};
  const std::string json_path = (std::filesystem::path(dir_) / "curves.json").string();
  std::ofstream out(json_path, std::ios::binary | std::ios::trunc);
  if (!out) throw OutputError(json_path + ": cannot open for writing");
  out << doc.dump(2) << '\n';
  out.close();
  if (!out) throw OutputError(json_path + ": write failed");
  files_.push_back(json_path);
  spdlog::info("training movie: {} frames of {} layers in {}", steps_.size(), layers_.size(), dir_);
  return files_;
}

}  // namespace cnnvis
