#include "cnnvis/methods/fv_transforms.h"

#include <algorithm>
#include <cmath>

#include <ATen/ATen.h>

namespace cnnvis {

namespace {

at::Tensor random_crop(const at::Tensor& x, int d, FeatureVisRng& rng) {
  if (d <= 0) return x;
  const int64_t h = x.size(2), w = x.size(3);
  if (h <= d + 1 || w <= d + 1) return x;
  const int64_t oy = rng.uniform_int(0, d), ox = rng.uniform_int(0, d);
  return x.slice(2, oy, oy + h - d).slice(3, ox, ox + w - d);
}

}  // namespace

std::vector<float> default_transform_scales() {
  std::vector<float> scales;
  for (int i = 0; i <= 10; ++i) scales.push_back(1.0f + static_cast<float>(i - 5) / 50.0f);
  return scales;
}

at::Tensor apply_transforms(const at::Tensor& images, const TransformOptions& options, FeatureVisRng& rng) {
  if (!options.enabled) return images;
  at::Tensor x = images;
  if (options.pad > 0) x = at::constant_pad_nd(x, {options.pad, options.pad, options.pad, options.pad}, 0.5);
  x = random_crop(x, options.jitter, rng);

  const std::vector<float> scales = options.scales.empty() ? default_transform_scales() : options.scales;
  const float s = scales[static_cast<std::size_t>(rng.uniform_int(0, static_cast<int64_t>(scales.size()) - 1))];
  if (s != 1.0f) {
    const int64_t h = std::max<int64_t>(2, std::llround(s * static_cast<double>(x.size(2))));
    const int64_t w = std::max<int64_t>(2, std::llround(s * static_cast<double>(x.size(3))));
    x = at::upsample_bilinear2d(x, {h, w}, false);
  }

  // Whole degrees in [-r, r] plus five extra zeros (Lucid: list(range(-10, 11)) + 5 * [0]).
  const int r = static_cast<int>(std::lround(options.rotate_degrees));
  if (r > 0) {
    const int64_t pick = rng.uniform_int(0, 2 * r + 5);
    const int degrees = pick <= 2 * r ? static_cast<int>(pick) - r : 0;
    if (degrees != 0) {
      const double a = degrees * M_PI / 180.0;
      const double c = std::cos(a), sn = std::sin(a);
      at::Tensor theta = at::tensor({static_cast<float>(c), static_cast<float>(-sn), 0.0f, static_cast<float>(sn),
                                     static_cast<float>(c), 0.0f},
                                    at::kFloat)
                             .view({1, 2, 3})
                             .expand({x.size(0), 2, 3})
                             .to(x.device());
      at::Tensor grid = at::affine_grid_generator(theta, x.sizes(), false);
      // Border padding: the corners take the nearest edge colour instead of black.
      x = at::grid_sampler(x, grid, /*bilinear*/ 0, /*border*/ 1, false);
    }
  }
  return random_crop(x, options.final_jitter, rng);
}

}  // namespace cnnvis
