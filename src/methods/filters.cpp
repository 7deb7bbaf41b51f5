#include "cnnvis/methods/filters.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <ATen/ATen.h>
#include <opencv2/imgproc.hpp>

#include "cnnvis/core/errors.h"
#include "cnnvis/core/text.h"
#include "cnnvis/io/colormap.h"
#include "cnnvis/models/layers.h"
#include "cnnvis/models/network.h"

namespace cnnvis {

cv::Mat FilterBank::kernel(int out_channel, int in_channel) const {
  cv::Mat k(kernel_h, kernel_w, CV_32F);
  const std::size_t offset = (static_cast<std::size_t>(out_channel) * in_channels + in_channel) * kernel_h * kernel_w;
  std::memcpy(k.ptr<float>(), weights.data() + offset, sizeof(float) * kernel_h * kernel_w);
  return k;
}

std::vector<std::string> conv_layer_names(const LoadedModel& model) {
  std::vector<std::string> names;
  for (const Node* node : model.network().nodes())
    if (node->conv_weight().defined()) names.push_back(node->name());
  return names;
}

FilterBank read_filters(const LoadedModel& model, const std::string& layer) {
  const std::vector<std::string> convs = conv_layer_names(model);
  if (convs.empty()) throw UsageError("model " + model.card().name + " has no convolution layers");
  std::string canonical;
  if (layer == "first" || layer.empty()) {
    canonical = convs.front();
  } else if (layer == "last") {
    canonical = convs.back();
  } else {
    canonical = model.resolve_layer(layer);
  }
  const Node* node = model.network().find_node(canonical);
  const at::Tensor weight = node != nullptr ? node->conv_weight() : at::Tensor();
  if (!weight.defined()) {
    std::vector<std::string> shown(convs.begin(), convs.begin() + std::min<std::size_t>(convs.size(), 20));
    throw UsageError("layer '" + layer + "' is not a convolution; choose first, last or one of: " + join(shown, ", ") +
                     (convs.size() > shown.size() ? ", ..." : ""));
  }
  at::Tensor w = weight.detach().to(at::kCPU, at::kFloat).contiguous();
  FilterBank bank;
  bank.layer = canonical;
  bank.out_channels = static_cast<int>(w.size(0));
  bank.in_channels = static_cast<int>(w.size(1));
  bank.kernel_h = static_cast<int>(w.size(2));
  bank.kernel_w = static_cast<int>(w.size(3));
  bank.weights.assign(w.data_ptr<float>(), w.data_ptr<float>() + w.numel());
  bank.max_abs = w.abs().max().item<float>();
  return bank;
}

cv::Mat filter_rgb_tile(const FilterBank& bank, int out_channel, int cell) {
  if (bank.in_channels != 3) throw UsageError("layer " + bank.layer + " does not take 3 input channels; no RGB tiles");
  if (out_channel < 0 || out_channel >= bank.out_channels) throw UsageError("filter index out of range");
  const float scale = bank.max_abs > 0 ? bank.max_abs : 1.0f;
  cv::Mat tile(bank.kernel_h, bank.kernel_w, CV_8UC3);
  for (int y = 0; y < bank.kernel_h; ++y) {
    for (int x = 0; x < bank.kernel_w; ++x) {
      cv::Vec3b& p = tile.at<cv::Vec3b>(y, x);
      for (int c = 0; c < 3; ++c) {
        const float w = bank.kernel(out_channel, c).at<float>(y, x);
        const float t = std::clamp(0.5f + w / (2.0f * scale), 0.0f, 1.0f);
        p[c] = static_cast<uchar>(std::lround(t * 255.0f));
      }
    }
  }
  cv::Mat big;
  cv::resize(tile, big, cv::Size(cell, cell), 0, 0, cv::INTER_NEAREST);
  return big;
}

cv::Mat filter_channel_grid(const FilterBank& bank, int out_channel, int cell, int max_inputs) {
  if (out_channel < 0 || out_channel >= bank.out_channels) throw UsageError("filter index out of range");
  const int n = std::max(1, std::min(bank.in_channels, max_inputs));
  const int columns = static_cast<int>(std::ceil(std::sqrt(static_cast<double>(n))));
  const int rows = (n + columns - 1) / columns;
  const int gap = 1;
  cv::Mat grid(rows * (cell + gap) + gap, columns * (cell + gap) + gap, CV_8UC3, cv::Scalar(255, 255, 255));
  for (int i = 0; i < n; ++i) {
    cv::Mat rgb = apply_diverging(bank.kernel(out_channel, i), bank.max_abs);
    cv::Mat big;
    cv::resize(rgb, big, cv::Size(cell, cell), 0, 0, cv::INTER_NEAREST);
    big.copyTo(grid(cv::Rect(gap + (i % columns) * (cell + gap), gap + (i / columns) * (cell + gap), cell, cell)));
  }
  return grid;
}

}  // namespace cnnvis
