// "Items on a canvas": deterministic synthetic localisation images built from Fashion-MNIST items.
//
// Every random choice comes from SplitMix64 in a fixed order, so a canvas depends only on (item, label,
// seed, options). The draws that do not depend on the item's pixels (background, clutter, tint,
// position, noise) happen whether or not the item is blank, so a canvas rendered with a blank item
// differs from the real one only inside the box: the box is exactly where the evidence is.
#include "cnnvis/io/canvas.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "cnnvis/core/errors.h"

namespace cnnvis {

// ---------------------------------------------------------------------------------------------------
// SplitMix64 (Steele, Lea & Flood 2014): tiny state, good statistical quality, identical everywhere.

std::uint64_t SplitMix64::next() {
  state_ += 0x9E3779B97F4A7C15ULL;
  std::uint64_t z = state_;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

double SplitMix64::uniform() {
  // Top 53 bits -> exactly representable double in [0, 1).
  return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0);
}

int SplitMix64::uniform_int(int lo, int hi) {
  if (hi < lo) throw UsageError("SplitMix64::uniform_int: empty range [" + std::to_string(lo) + ", " +
                                std::to_string(hi) + "]");
  const std::uint64_t range = static_cast<std::uint64_t>(static_cast<std::int64_t>(hi) - lo) + 1;
  // Rejection sampling removes modulo bias; the loop almost never repeats for int-sized ranges.
  const std::uint64_t limit = UINT64_MAX - (UINT64_MAX % range);
  std::uint64_t value = next();
  while (value >= limit) value = next();
  return static_cast<int>(static_cast<std::int64_t>(lo) + static_cast<std::int64_t>(value % range));
}

double SplitMix64::normal() {
  // Box-Muller, cosine branch only: two uniforms per sample keeps the draw order trivial to reason about.
  const double u1 = 1.0 - uniform();  // (0, 1], so log() is finite
  const double u2 = uniform();
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(kTwoPi * u2);
}

namespace {

constexpr int kItemSide = 28;
constexpr int kMaxCanvasSize = 4096;

struct Rgb {
  double r, g, b;
};

Rgb random_colour(SplitMix64& rng, double lo, double hi) {
  Rgb c;
  c.r = lo + (hi - lo) * rng.uniform();
  c.g = lo + (hi - lo) * rng.uniform();
  c.b = lo + (hi - lo) * rng.uniform();
  return c;
}

// A saturated, bright colour (HSV with S in [0.55, 1], V in [0.85, 1]) so that the item stands out from
// the darker background while its hue still varies (colour alone must not identify the class).
Rgb bright_colour(SplitMix64& rng) {
  const double h = rng.uniform() * 6.0;
  const double s = 0.55 + 0.45 * rng.uniform();
  const double v = 0.85 + 0.15 * rng.uniform();
  const int sector = std::min(5, static_cast<int>(h));
  const double f = h - sector;
  const double p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
  switch (sector) {
    case 0: return {v, t, p};
    case 1: return {q, v, p};
    case 2: return {p, v, t};
    case 3: return {p, q, v};
    case 4: return {t, p, v};
    default: return {v, p, q};
  }
}

cv::Scalar to_scalar8(const Rgb& c) { return cv::Scalar(c.r * 255.0, c.g * 255.0, c.b * 255.0); }

void validate(const CanvasOptions& o) {
  if (o.size < 1 || o.size > kMaxCanvasSize)
    throw UsageError("canvas size " + std::to_string(o.size) + " is out of range (1.." + std::to_string(kMaxCanvasSize) +
                     ")");
  if (o.item_size < 1 || o.item_size > o.size)
    throw UsageError("canvas item size " + std::to_string(o.item_size) + " must be between 1 and the canvas size " +
                     std::to_string(o.size));
  if (o.clutter_strokes < 0 || o.clutter_strokes > 1000)
    throw UsageError("canvas clutter strokes " + std::to_string(o.clutter_strokes) + " is out of range (0..1000)");
  if (!(o.noise_sd >= 0.0f) || o.noise_sd > 1.0f)
    throw UsageError("canvas noise sd " + std::to_string(o.noise_sd) + " is out of range (0..1)");
}

// Background: bilinear blend of four random corner colours, kept mid-dark so bright items contrast.
cv::Mat make_background(SplitMix64& rng, int size) {
  Rgb corners[4];
  for (Rgb& c : corners) c = random_colour(rng, 0.05, 0.55);
  cv::Mat image(size, size, CV_8UC3);
  const double denom = size > 1 ? size - 1 : 1;
  for (int y = 0; y < size; ++y) {
    const double fy = y / denom;
    auto* row = image.ptr<cv::Vec3b>(y);
    for (int x = 0; x < size; ++x) {
      const double fx = x / denom;
      const double w00 = (1 - fx) * (1 - fy), w10 = fx * (1 - fy), w01 = (1 - fx) * fy, w11 = fx * fy;
      const double r = w00 * corners[0].r + w10 * corners[1].r + w01 * corners[2].r + w11 * corners[3].r;
      const double g = w00 * corners[0].g + w10 * corners[1].g + w01 * corners[2].g + w11 * corners[3].g;
      const double b = w00 * corners[0].b + w10 * corners[1].b + w01 * corners[2].b + w11 * corners[3].b;
      row[x] = cv::Vec3b(cv::saturate_cast<uchar>(r * 255.0), cv::saturate_cast<uchar>(g * 255.0),
                         cv::saturate_cast<uchar>(b * 255.0));
    }
  }
  return image;
}

// Clutter: thin lines, arcs/ellipses and small rectangles anywhere (also under the item), so that
// "anything bright" or "any edge" is not a shortcut to the item's position.
void draw_clutter(cv::Mat& image, SplitMix64& rng, int strokes) {
  const int size = image.cols;
  const int margin = std::max(1, size / 8);
  const int max_thickness = std::max(1, size / 32);
  const auto coord = [&] { return rng.uniform_int(-margin, size - 1 + margin); };
  for (int i = 0; i < strokes; ++i) {
    const int kind = rng.uniform_int(0, 3);
    const Rgb colour = random_colour(rng, 0.1, 0.9);
    const cv::Scalar c = to_scalar8(colour);
    const int thickness = rng.uniform_int(1, max_thickness);
    switch (kind) {
      case 0: {  // line
        const cv::Point a(coord(), coord());
        const cv::Point b(coord(), coord());
        cv::line(image, a, b, c, thickness, cv::LINE_AA);
        break;
      }
      case 1: {  // circle outline
        const cv::Point centre(coord(), coord());
        const int radius = rng.uniform_int(std::max(1, size / 25), std::max(2, size / 5));
        cv::circle(image, centre, radius, c, thickness, cv::LINE_AA);
        break;
      }
      case 2: {  // ellipse arc
        const cv::Point centre(coord(), coord());
        const cv::Size axes(rng.uniform_int(std::max(1, size / 20), std::max(2, size / 4)),
                            rng.uniform_int(std::max(1, size / 20), std::max(2, size / 4)));
        const int angle = rng.uniform_int(0, 179);
        const int start = rng.uniform_int(0, 359);
        const int sweep = rng.uniform_int(90, 360);
        cv::ellipse(image, centre, axes, angle, start, start + sweep, c, thickness, cv::LINE_AA);
        break;
      }
      default: {  // small rectangle, filled or outlined; kept smaller than an item
        const int w = rng.uniform_int(std::max(1, size / 32), std::max(2, size / 6));
        const int h = rng.uniform_int(std::max(1, size / 32), std::max(2, size / 6));
        const cv::Point tl(rng.uniform_int(-w / 2, size - 1), rng.uniform_int(-h / 2, size - 1));
        const bool filled = rng.uniform() < 0.5;
        cv::rectangle(image, cv::Rect(tl.x, tl.y, w, h), c, filled ? cv::FILLED : thickness, cv::LINE_8);
        break;
      }
    }
  }
}

}  // namespace

namespace {

// make_canvas and make_canvas_window: the whole canvas, or (window non-null) only the window's noise
// and pixels.
Canvas render_canvas(const std::uint8_t* item28x28, int label, std::int64_t source_index, std::uint64_t seed,
                     const CanvasOptions& options, const CanvasWindow* window) {
  if (item28x28 == nullptr) throw UsageError("make_canvas: no item pixels given");
  validate(options);
  const int size = options.size;
  const int item_size = options.item_size;
  SplitMix64 rng(seed);

  // Fixed draw order: background, clutter, tint, position, noise.
  cv::Mat background = make_background(rng, size);
  draw_clutter(background, rng, options.clutter_strokes);
  const Rgb tint = bright_colour(rng);
  const int x0 = rng.uniform_int(0, size - item_size);
  const int y0 = rng.uniform_int(0, size - item_size);

  // The item as alpha in [0, 1]; resized with bilinear interpolation when the box is not 28x28.
  cv::Mat item(kItemSide, kItemSide, CV_8UC1, const_cast<std::uint8_t*>(item28x28));
  cv::Mat alpha;
  item.convertTo(alpha, CV_32F, 1.0 / 255.0);
  if (item_size != kItemSide) {
    cv::Mat resized;
    cv::resize(alpha, resized, cv::Size(item_size, item_size), 0, 0,
               item_size > kItemSide ? cv::INTER_LINEAR : cv::INTER_AREA);
    alpha = resized;
  }

  // Composite in float, add noise, then round once. The garment is opaque: coverage comes from a
  // grey-level closing of the item (dilate, then erode with 3x3), which fills the dark prints, seams and
  // folds inside the garment while the empty space around it (and wide gaps such as between trouser legs)
  // stays see-through; a soft ramp keeps the outline anti-aliased. Inside, the tint is shaded by the
  // item's own intensity, so its texture survives and no clutter shows through it: what identifies the
  // class is all inside the box, drawn over whatever the background has there.
  cv::Mat closed;
  cv::morphologyEx(alpha, closed, cv::MORPH_CLOSE, cv::getStructuringElement(cv::MORPH_RECT, cv::Size(3, 3)));
  cv::Mat canvas;
  background.convertTo(canvas, CV_32FC3, 1.0 / 255.0);
  for (int y = 0; y < item_size; ++y) {
    const float* a = alpha.ptr<float>(y);
    const float* c = closed.ptr<float>(y);
    auto* row = canvas.ptr<cv::Vec3f>(y0 + y);
    for (int x = 0; x < item_size; ++x) {
      const float intensity = std::clamp(a[x], 0.0f, 1.0f);
      const float cover = std::clamp(8.0f * c[x], 0.0f, 1.0f);
      const float shade = 0.35f + 0.65f * intensity;
      cv::Vec3f& p = row[x0 + x];
      p[0] = (1 - cover) * p[0] + cover * shade * static_cast<float>(tint.r);
      p[1] = (1 - cover) * p[1] + cover * shade * static_cast<float>(tint.g);
      p[2] = (1 - cover) * p[2] + cover * shade * static_cast<float>(tint.b);
    }
  }
  const cv::Rect box(x0, y0, item_size, item_size);
  cv::Rect region(0, 0, size, size);
  if (window != nullptr) {
    region = (*window)(box);
    if (region.empty() || (region & cv::Rect(0, 0, size, size)) != region)
      throw UsageError("canvas window [" + std::to_string(region.x) + ", " + std::to_string(region.y) + ", " +
                       std::to_string(region.width) + ", " + std::to_string(region.height) + "] is not inside the " +
                       std::to_string(size) + "x" + std::to_string(size) + " canvas");
  }
  if (options.noise_sd > 0.0f) {
    // Row-major, three normals (two draws each) per pixel; pixels outside the region are skipped by
    // advancing the generator, so the region's noise is the whole canvas's.
    const double sd = options.noise_sd;
    for (int y = region.y; y < region.y + region.height; ++y) {
      SplitMix64 row_rng = rng;
      row_rng.advance(6ULL * (static_cast<std::uint64_t>(y) * static_cast<std::uint64_t>(size) + static_cast<std::uint64_t>(region.x)));
      auto* row = canvas.ptr<cv::Vec3f>(y);
      for (int x = region.x; x < region.x + region.width; ++x)
        for (int ch = 0; ch < 3; ++ch) row[x][ch] += static_cast<float>(sd * row_rng.normal());
    }
  }

  Canvas result;
  // Converted whole, then cropped: every pixel goes through exactly the same conversion code.
  canvas.convertTo(result.rgb, CV_8UC3, 255.0);  // saturating, rounds to nearest
  if (window != nullptr) result.rgb = result.rgb(region).clone();
  result.label = label;
  result.box = box;
  result.source_index = source_index;
  return result;
}

}  // namespace

Canvas make_canvas(const std::uint8_t* item28x28, int label, std::int64_t source_index, std::uint64_t seed,
                   const CanvasOptions& options) {
  return render_canvas(item28x28, label, source_index, seed, options, nullptr);
}

Canvas make_canvas_window(const std::uint8_t* item28x28, int label, std::int64_t source_index, std::uint64_t seed,
                          const CanvasOptions& options, const CanvasWindow& window) {
  if (!window) throw UsageError("make_canvas_window: no window function given");
  return render_canvas(item28x28, label, source_index, seed, options, &window);
}

namespace {

std::uint64_t canvas_seed_for(const FashionMnistSplit& split, std::int64_t index, std::uint64_t base_seed) {
  const auto& dims = split.images.dims;
  if (dims.size() != 3 || dims[1] != kItemSide || dims[2] != kItemSide)
    throw UsageError("make_canvas_from_split: images must have shape Nx28x28");
  const std::int64_t count = dims[0];
  if (index < 0 || index >= count || index >= static_cast<std::int64_t>(split.labels.values.size()))
    throw UsageError("canvas item index " + std::to_string(index) + " is out of range (the split has " +
                     std::to_string(count) + " items)");
  // Mix base seed and index through one SplitMix64 step: nearby indices get unrelated streams, and
  // canvas i does not depend on how many others are generated.
  SplitMix64 mixer(base_seed ^ (static_cast<std::uint64_t>(index) * 0x9E3779B97F4A7C15ULL));
  return mixer.next();
}

}  // namespace

Canvas make_canvas_from_split(const FashionMnistSplit& split, std::int64_t index, std::uint64_t base_seed,
                              const CanvasOptions& options) {
  const std::uint64_t seed = canvas_seed_for(split, index, base_seed);
  const std::uint8_t* item = split.images.values.data() + index * kItemSide * kItemSide;
  return make_canvas(item, split.labels.values[static_cast<std::size_t>(index)], index, seed, options);
}

Canvas make_canvas_window_from_split(const FashionMnistSplit& split, std::int64_t index, std::uint64_t base_seed,
                                     const CanvasOptions& options, const CanvasWindow& window) {
  const std::uint64_t seed = canvas_seed_for(split, index, base_seed);
  const std::uint8_t* item = split.images.values.data() + index * kItemSide * kItemSide;
  return make_canvas_window(item, split.labels.values[static_cast<std::size_t>(index)], index, seed, options, window);
}

void write_canvas_set(const std::string& dir, const std::vector<Canvas>& canvases,
                      const std::vector<std::string>& class_names, const std::string& prefix) {
  if (prefix.find('/') != std::string::npos || prefix.find('\\') != std::string::npos)
    throw UsageError("canvas file prefix '" + prefix + "' must not contain a path separator");
  int size = canvases.empty() ? 0 : canvases.front().rgb.cols;
  for (const Canvas& c : canvases) {
    if (c.rgb.empty() || c.rgb.type() != CV_8UC3 || c.rgb.rows != size || c.rgb.cols != size)
      throw UsageError("write_canvas_set: canvases must all be " + std::to_string(size) + "x" + std::to_string(size) +
                       " 8-bit RGB images");
  }

  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir)) throw OutputError(dir + ": cannot create directory (" + ec.message() + ")");

  nlohmann::json items = nlohmann::json::array();
  for (std::size_t i = 0; i < canvases.size(); ++i) {
    const Canvas& c = canvases[i];
    char number[32];
    std::snprintf(number, sizeof(number), "%05zu", i);
    const std::string file = prefix + number + ".png";
    const std::string path = (std::filesystem::path(dir) / file).string();
    cv::Mat bgr;
    cv::cvtColor(c.rgb, bgr, cv::COLOR_RGB2BGR);
    bool ok = false;
    try {
      ok = cv::imwrite(path, bgr);
    } catch (const cv::Exception& e) {
      throw OutputError(path + ": cannot write PNG (" + e.what() + ")");
    }
    if (!ok) throw OutputError(path + ": cannot write PNG");
    const std::string class_name = c.label >= 0 && static_cast<std::size_t>(c.label) < class_names.size()
                                       ? class_names[static_cast<std::size_t>(c.label)]
                                       : "class " + std::to_string(c.label);
    items.push_back({{"file", file},
                     {"label", c.label},
                     {"class", class_name},
                     {"box", {c.box.x, c.box.y, c.box.width, c.box.height}},
                     {"source_index", c.source_index}});
  }
  nlohmann::json doc = {{"size", size}, {"classes", class_names}, {"items", std::move(items)}};

  const std::string json_path = (std::filesystem::path(dir) / "canvases.json").string();
  std::ofstream out(json_path, std::ios::binary | std::ios::trunc);
  if (!out) throw OutputError(json_path + ": cannot open for writing");
  out << doc.dump(2) << '\n';
  out.close();
  if (!out) throw OutputError(json_path + ": write failed");
}

}  // namespace cnnvis
