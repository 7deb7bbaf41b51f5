// Robustness transforms for feature visualisation (library-internal; needs ATen): every optimisation
// step sees a randomly padded, jittered, scaled and rotated copy of the image, so that the result must
// work for the network under small changes instead of exploiting single pixels (Lucid:
// lucid/optvis/transform.py standard_transforms). The choices come from a seeded generator of our own.
#pragma once

#include <cstdint>
#include <random>

#include <ATen/core/Tensor.h>

#include "cnnvis/methods/activation_max.h"

namespace cnnvis {

// A seeded generator whose draws are the same on every platform (unlike std::uniform_int_distribution).
class FeatureVisRng {
 public:
  explicit FeatureVisRng(std::uint64_t seed) : engine_(seed) {}
  // Uniform integer in [lo, hi].
  int64_t uniform_int(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(engine_() % static_cast<std::uint64_t>(hi - lo + 1));
  }
  std::uint64_t next() { return engine_(); }

 private:
  std::mt19937_64 engine_;
};

// Lucid's scales: 1 + (i - 5) / 50 for i = 0..10.
std::vector<float> default_transform_scales();

// images: N x 3 x H x W in [0, 1]. The same random draw applies to every image of the batch. The output
// size differs from the input's (padding, crops, scaling).
at::Tensor apply_transforms(const at::Tensor& images, const TransformOptions& options, FeatureVisRng& rng);

}  // namespace cnnvis
