// The training data pipeline: see cnnvis/methods/train_data.h.
#include "cnnvis/methods/train_data.h"

#include <algorithm>
#include <cstring>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

namespace cnnvis::train_data {

// Renders canvases for split items `indices` into an N x S x S x 3 uint8 tensor (and their labels),
// where S is the canvas size, or crop when 0 < crop < size: then each image is a crop of its canvas
// that contains the whole item, at a position drawn from the canvas seed and index (deterministic).
// Canvases are independent of each other, so they are drawn in parallel without affecting the result.
void render_canvases(const FashionMnistSplit& split, const std::int64_t* indices, std::int64_t count,
                     std::uint64_t seed, const CanvasOptions& canvas, int crop, at::Tensor& pixels,
                     at::Tensor& labels) {
  const int size = canvas.size;
  const int out = crop > 0 && crop < size ? crop : size;
  pixels = at::empty({count, out, out, 3}, at::kByte);
  labels = at::empty({count}, at::kLong);
  std::uint8_t* dst = pixels.data_ptr<std::uint8_t>();
  std::int64_t* lab = labels.data_ptr<std::int64_t>();
  const std::size_t image_bytes = static_cast<std::size_t>(out) * out * 3;
  at::parallel_for(0, count, 16, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) {
      Canvas c;
      if (out < size) {
        // The crop must contain the box (when the box fits) and stay inside the canvas. Only the crop
        // is rendered (same pixels as cropping the whole canvas, less noise to draw).
        const CanvasWindow window = [&](const cv::Rect& box) {
          SplitMix64 rng(seed ^ 0x63726F70'00000000ULL ^ (static_cast<std::uint64_t>(indices[i]) * 0xD1B54A32D192ED03ULL));
          const auto place = [&](int box_start, int box_size) {
            const int lo = std::max(0, box_start + box_size - out);
            const int hi = std::min(size - out, box_start);
            return lo <= hi ? rng.uniform_int(lo, hi) : std::clamp(box_start + box_size / 2 - out / 2, 0, size - out);
          };
          const int x0 = place(box.x, box.width);
          const int y0 = place(box.y, box.height);
          return cv::Rect(x0, y0, out, out);
        };
        c = make_canvas_window_from_split(split, indices[i], seed, canvas, window);
      } else {
        c = make_canvas_from_split(split, indices[i], seed, canvas);
      }
      for (int y = 0; y < out; ++y) {
        std::memcpy(dst + i * image_bytes + static_cast<std::size_t>(y) * out * 3, c.rgb.ptr<std::uint8_t>(y),
                    static_cast<std::size_t>(out) * 3);
      }
      lab[i] = c.label;
    }
  });
}

Normaliser::Normaliser(const ModelCard& card, const at::Device& device) {
  std::vector<float> s(3), t(3);
  for (int c = 0; c < 3; ++c) {
    s[c] = card.input_range / (255.0f * card.std[c]);
    t[c] = -card.mean[c] / card.std[c];
  }
  scale = at::tensor(s, at::kFloat).view({1, 3, 1, 1}).to(device);
  shift = at::tensor(t, at::kFloat).view({1, 3, 1, 1}).to(device);
}

at::Tensor Normaliser::operator()(const at::Tensor& pixels) const {
  at::Tensor x = pixels.to(scale.device()).permute({0, 3, 1, 2}).to(at::kFloat);
  // Channels-last (NHWC in memory, the layout the pixels already have): oneDNN's convolutions and
  // ATen's BatchNorm, ReLU and pooling run on it without reordering, about 20% less CPU time per step
  // than NCHW for fashion_vgg; the outputs keep the layout.
  return (x * scale + shift).contiguous(at::MemoryFormat::ChannelsLast);
}

// Input side for a step: crop_size, growing by 8 pixels per equal share of the first crop_steps
// steps; the whole canvas (0) from crop_steps on.
int crop_at(const TrainOptions& o, std::int64_t step, std::int64_t crop_steps) {
  const int size = o.canvas.size;
  if (o.crop_size <= 0 || o.crop_size >= size || step >= crop_steps) return 0;
  const int stages = (size - o.crop_size + 7) / 8;  // e.g. 32, 40, 48, 56 below 64
  const int stage = static_cast<int>(step * stages / std::max<std::int64_t>(1, crop_steps));
  return std::min(size - 1, o.crop_size + 8 * stage);
}

// Test items shown in the movie: the first test canvas of each class (full test set, so that a small
// --test-limit still gives ten columns).
std::vector<MovieSample> movie_samples(const FashionMnistSplit& test, std::uint64_t seed, const CanvasOptions& canvas) {
  std::vector<MovieSample> samples;
  std::vector<bool> seen(10, false);
  const std::int64_t n = static_cast<std::int64_t>(test.labels.values.size());
  for (std::int64_t i = 0; i < n && samples.size() < 10; ++i) {
    const int label = test.labels.values[static_cast<std::size_t>(i)];
    if (label < 0 || label >= 10 || seen[static_cast<std::size_t>(label)]) continue;
    seen[static_cast<std::size_t>(label)] = true;
    Canvas c = make_canvas_from_split(test, i, seed, canvas);
    samples.push_back({c.rgb, label});
  }
  std::sort(samples.begin(), samples.end(), [](const MovieSample& a, const MovieSample& b) { return a.label < b.label; });
  return samples;
}

}  // namespace cnnvis::train_data
