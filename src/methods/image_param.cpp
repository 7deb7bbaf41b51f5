#include "cnnvis/methods/image_param.h"

#include <algorithm>
#include <cmath>
#include <random>

#include <ATen/ATen.h>

#include "cnnvis/core/errors.h"

namespace cnnvis {

namespace {

// Square root of ImageNet's colour correlation matrix (Lucid: lucid/optvis/param/color.py).
constexpr float kColorCorrelationSqrt[3][3] = {{0.26f, 0.09f, 0.02f}, {0.27f, 0.00f, -0.05f}, {0.27f, -0.09f, 0.03f}};

int64_t spectrum_width(int width) { return width / 2 + 1; }

}  // namespace

at::Tensor color_decorrelation_matrix() {
  at::Tensor c = at::empty({3, 3}, at::kFloat);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) c[i][j] = kColorCorrelationSqrt[i][j];
  // Divided by the largest column norm (0.46195...), so the map never stretches a colour vector.
  const double max_norm = c.pow(2).sum(0).sqrt().max().item<double>();
  return c / max_norm;
}

at::Tensor fourier_scale(int height, int width) {
  const int64_t wf = spectrum_width(width);
  at::Tensor scale = at::empty({height, wf}, at::kFloat);
  auto a = scale.accessor<float, 2>();
  const double floor = 1.0 / std::max(height, width);
  for (int64_t y = 0; y < height; ++y) {
    // numpy.fft.fftfreq: 0, 1, .., then negative frequencies; only the magnitude matters here.
    const double fy = static_cast<double>(y <= (height - 1) / 2 ? y : y - height) / height;
    for (int64_t x = 0; x < wf; ++x) {
      const double fx = static_cast<double>(x) / width;
      const double f = std::sqrt(fx * fx + fy * fy);
      a[y][x] = static_cast<float>(std::sqrt(static_cast<double>(height) * width) / std::max(f, floor));
    }
  }
  return scale;
}

at::Tensor seeded_normal(const std::vector<int64_t>& shape, double sd, std::uint64_t seed) {
  at::Tensor out = at::empty(shape, at::kFloat);
  float* p = out.data_ptr<float>();
  const int64_t n = out.numel();
  std::mt19937_64 rng(seed);
  // Box-Muller written out: std::normal_distribution's algorithm differs between standard libraries.
  const auto uniform = [&rng] { return (static_cast<double>(rng() >> 11) + 0.5) * (1.0 / 9007199254740992.0); };
  for (int64_t i = 0; i < n; i += 2) {
    const double r = std::sqrt(-2.0 * std::log(uniform()));
    const double theta = 2.0 * M_PI * uniform();
    p[i] = static_cast<float>(sd * r * std::cos(theta));
    if (i + 1 < n) p[i + 1] = static_cast<float>(sd * r * std::sin(theta));
  }
  return out;
}

ImageParam::ImageParam(ImageParameterization kind, bool decorrelate, int height, int width)
    : kind_(kind), decorrelate_(decorrelate), height_(height), width_(width) {
  if (height < 2 || width < 2) throw UsageError("image size must be at least 2x2");
  color_ = color_decorrelation_matrix();
  if (kind == ImageParameterization::fourier) scale_ = fourier_scale(height, width);
}

ImageParam ImageParam::noise(int count, int height, int width, ImageParameterization kind, bool decorrelate, double sd,
                             std::uint64_t seed, const at::Device& device) {
  ImageParam p(kind, decorrelate, height, width);
  std::vector<int64_t> shape = {count, 3, height, width};
  if (kind == ImageParameterization::fourier) shape = {count, 3, height, spectrum_width(width), 2};
  p.params_ = seeded_normal(shape, sd, seed).to(device);
  p.params_.requires_grad_(true);
  if (p.scale_.defined()) p.scale_ = p.scale_.to(device);
  p.color_ = p.color_.to(device);
  return p;
}

ImageParam ImageParam::from_images(const at::Tensor& images, ImageParameterization kind, bool decorrelate,
                                   double clamp) {
  ImageParam p(kind, decorrelate, static_cast<int>(images.size(2)), static_cast<int>(images.size(3)));
  at::NoGradGuard no_grad;
  const at::Device device = images.device();
  p.color_ = p.color_.to(device);
  at::Tensor x = images.detach().to(at::kFloat).clamp(clamp, 1.0 - clamp);
  at::Tensor t = at::log(x / (1.0 - x));  // inverse sigmoid
  if (decorrelate) {
    // rgb = C t per pixel, so t = C^-1 rgb.
    at::Tensor inverse = at::inverse(p.color_.to(at::kDouble)).to(at::kFloat);
    t = t.permute({0, 2, 3, 1}).matmul(inverse.t()).permute({0, 3, 1, 2});
  }
  if (kind == ImageParameterization::fourier) {
    p.scale_ = p.scale_.to(device);
    at::Tensor spectrum = at::fft_rfft2(t.contiguous() * 4.0) / p.scale_;
    p.params_ = at::view_as_real(spectrum).contiguous();
  } else {
    p.params_ = t.contiguous();
  }
  p.params_.requires_grad_(true);
  return p;
}

at::Tensor ImageParam::image() const {
  at::Tensor t;
  if (kind_ == ImageParameterization::fourier) {
    at::Tensor spectrum = at::view_as_complex(params_) * scale_;
    const std::vector<int64_t> size = {height_, width_};
    t = at::fft_irfft2(spectrum, at::IntArrayRef(size)) / 4.0;
  } else {
    t = params_;
  }
  if (decorrelate_) t = t.permute({0, 2, 3, 1}).matmul(color_.t()).permute({0, 3, 1, 2});
  return at::sigmoid(t);
}

at::Tensor normalize_for_model(const at::Tensor& images01, const ModelCard& card) {
  const at::TensorOptions opts = images01.options();
  at::Tensor mean = at::tensor({card.mean[0], card.mean[1], card.mean[2]}, at::kFloat).view({1, 3, 1, 1}).to(opts.device());
  at::Tensor std = at::tensor({card.std[0], card.std[1], card.std[2]}, at::kFloat).view({1, 3, 1, 1}).to(opts.device());
  at::Tensor x = images01;
  if (card.input_range != 1.0f) x = x * card.input_range;
  return (x - mean) / std;
}

}  // namespace cnnvis
