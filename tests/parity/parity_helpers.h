// Shared by the parity tests: reference arrays written by the Python exporters, and the error measure
// every parity check uses.
#pragma once

#include <cstring>
#include <filesystem>
#include <vector>

#include <ATen/ATen.h>
#include <opencv2/core.hpp>

#include "cnnvis/io/npy.h"

namespace cnnvis {

inline at::Tensor load_npy_tensor(const std::filesystem::path& path) {
  NpyArray array = read_npy(path.string());
  std::vector<float> values = array.to_float();
  return at::tensor(values).view(array.shape);
}

// max |a - b| / max |b|: relative to the layer's scale, so tiny and large activations are judged alike.
inline double relative_error(const at::Tensor& ours, const at::Tensor& reference) {
  const double scale = reference.abs().max().item<double>();
  const double diff = (ours - reference).abs().max().item<double>();
  return scale > 0 ? diff / scale : diff;
}

// An H x W (x C) float map from an .npy file of that shape.
inline cv::Mat load_npy_map(const std::filesystem::path& path) {
  NpyArray array = read_npy(path.string());
  std::vector<float> values = array.to_float();
  const int channels = array.shape.size() == 3 ? static_cast<int>(array.shape[2]) : 1;
  cv::Mat out(static_cast<int>(array.shape.at(0)), static_cast<int>(array.shape.at(1)), CV_MAKETYPE(CV_32F, channels));
  std::memcpy(out.ptr<float>(), values.data(), sizeof(float) * values.size());
  return out;
}

// The exporters' 1 x 3 x H x W image in [0, 1] as an H x W x 3 model input.
inline cv::Mat load_npy_input(const std::filesystem::path& path) {
  NpyArray array = read_npy(path.string());
  std::vector<float> values = array.to_float();
  const int h = static_cast<int>(array.shape[2]), w = static_cast<int>(array.shape[3]);
  cv::Mat out(h, w, CV_32FC3);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) out.at<cv::Vec3f>(y, x)[c] = values[(static_cast<std::size_t>(c) * h + y) * w + x];
  return out;
}

}  // namespace cnnvis
