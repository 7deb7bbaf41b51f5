// How feature visualisation represents the image it optimises (library-internal; needs ATen).
//
//   pixel:   t = the parameters themselves (N x 3 x H x W)
//   fourier: t = irfft2(spectrum * scale) / 4, scale = sqrt(H W) / max(|f|, 1 / max(H, W))   (1/f decay)
// then, with decorrelation, rgb_linear = C t per pixel where C is the square root of ImageNet's colour
// correlation divided by its largest column norm, and image = sigmoid(rgb_linear) in [0, 1]
// (Lucid: lucid/optvis/param/spatial.py, color.py). Gradient steps on spectrum coefficients scaled
// like natural images' spectra move every frequency about equally, which is what keeps images free of
// high-frequency noise.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

#include "cnnvis/io/model_card.h"
#include "cnnvis/methods/activation_max.h"

namespace cnnvis {

// The 3x3 colour matrix C (already divided by its largest column norm), CPU float.
at::Tensor color_decorrelation_matrix();

// sqrt(H W) / max(|f|, 1 / max(H, W)) for the H x (W/2 + 1) rfft2 frequencies, CPU float.
at::Tensor fourier_scale(int height, int width);

// N(0, sd^2) values from a seeded generator of our own (the same on every platform and LibTorch
// version), CPU float.
at::Tensor seeded_normal(const std::vector<int64_t>& shape, double sd, std::uint64_t seed);

class ImageParam {
 public:
  // Seeded noise of standard deviation sd in the parameter space.
  static ImageParam noise(int count, int height, int width, ImageParameterization kind, bool decorrelate, double sd,
                          std::uint64_t seed, const at::Device& device);
  // Parameters whose image() equals images (N x 3 x H x W in [0, 1]; values are clamped to
  // [clamp, 1 - clamp] first, since the sigmoid never reaches 0 or 1).
  static ImageParam from_images(const at::Tensor& images, ImageParameterization kind, bool decorrelate,
                                double clamp = 1e-3);

  // N x 3 x H x W in [0, 1], differentiable with respect to params().
  at::Tensor image() const;
  at::Tensor& params() { return params_; }
  int height() const { return height_; }
  int width() const { return width_; }

 private:
  ImageParam(ImageParameterization kind, bool decorrelate, int height, int width);
  ImageParameterization kind_;
  bool decorrelate_;
  int height_, width_;
  at::Tensor params_;  // pixel: N x 3 x H x W; fourier: N x 3 x H x (W/2+1) x 2 (real, imaginary)
  at::Tensor scale_;   // fourier: H x (W/2+1)
  at::Tensor color_;   // 3 x 3
};

// [0, 1] RGB images -> the model's normalised input (card.input_range, mean, std), differentiable.
at::Tensor normalize_for_model(const at::Tensor& images01, const ModelCard& card);

}  // namespace cnnvis
