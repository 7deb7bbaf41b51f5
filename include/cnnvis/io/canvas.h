// "Items on a canvas": a Fashion-MNIST item placed at a random position on a larger cluttered canvas, so
// that a classifier has to find the object and its box is known for localisation scores.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "cnnvis/io/idx.h"

namespace cnnvis {

struct CanvasOptions {
  int size = 64;             // canvas is size x size
  int item_size = 28;        // the item's side on the canvas (28 = native; larger is resized)
  int clutter_strokes = 6;   // random lines/blobs in the background
  float noise_sd = 0.06f;    // Gaussian pixel noise, in [0, 1] units
};

struct Canvas {
  cv::Mat rgb;   // CV_8UC3 RGB, size x size
  int label = 0;
  cv::Rect box;  // where the item was placed (item_size x item_size), inside the canvas
  std::int64_t source_index = 0;  // index of the item in its data set split
};

// Deterministic: the same (item, seed, options) gives the same canvas on every machine (own PRNG, no
// std:: distributions). The item is drawn opaque in a random bright tint shaded by its own intensity
// (its silhouette from a grey-level closing, so dark prints inside a garment do not turn see-through)
// over a background of smooth colour and clutter strokes, then noise is added everywhere.
Canvas make_canvas(const std::uint8_t* item28x28, int label, std::int64_t source_index, std::uint64_t seed,
                   const CanvasOptions& options = {});

// Canvas for item `index` of a split: the seed is mixed from base_seed and index.
Canvas make_canvas_from_split(const FashionMnistSplit& split, std::int64_t index, std::uint64_t base_seed,
                              const CanvasOptions& options = {});

// Chooses a window of the canvas from the item's box (canvas coordinates); the window must lie inside
// the canvas.
using CanvasWindow = std::function<cv::Rect(const cv::Rect& box)>;

// The window of the same canvas: rgb equals make_canvas's rgb cropped to window(box), byte for byte,
// but the pixel noise (most of the cost) is drawn only for the window's pixels. box stays in canvas
// coordinates. Training on crops uses it. Throws UsageError for a window outside the canvas.
Canvas make_canvas_window(const std::uint8_t* item28x28, int label, std::int64_t source_index, std::uint64_t seed,
                          const CanvasOptions& options, const CanvasWindow& window);
Canvas make_canvas_window_from_split(const FashionMnistSplit& split, std::int64_t index, std::uint64_t base_seed,
                                     const CanvasOptions& options, const CanvasWindow& window);

// Writes canvases as <dir>/<prefix>NNNNN.png plus <dir>/canvases.json:
// {"size": 64, "classes": [...], "items": [{"file": "...png", "label": 3, "class": "Dress",
//   "box": [x, y, w, h], "source_index": 17}]}. Throws OutputError.
void write_canvas_set(const std::string& dir, const std::vector<Canvas>& canvases,
                      const std::vector<std::string>& class_names, const std::string& prefix = "canvas_");

// A small, fast, portable PRNG (SplitMix64) used for everything that must be reproducible.
class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next();
  double uniform();                      // [0, 1)
  int uniform_int(int lo, int hi);       // inclusive
  double normal();                       // Box-Muller
  // Skips n draws of next(): the state is a counter, so this equals calling next() n times. uniform()
  // takes one draw, normal() two.
  void advance(std::uint64_t n) { state_ += n * 0x9E3779B97F4A7C15ULL; }

 private:
  std::uint64_t state_;
};

}  // namespace cnnvis
