// Shared by the parity tests: reference arrays written by the Python exporters, and the error measure
// every parity check uses.
#pragma once

#include <filesystem>
#include <vector>

#include <ATen/ATen.h>

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

}  // namespace cnnvis
