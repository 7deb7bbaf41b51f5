// Deep dream on a user's image: the octave loop of the original notebook (Mordvintsev, Olah, Tyka 2015).
#include <algorithm>
#include <cmath>
#include <cstring>

#include <ATen/ATen.h>
#include <opencv2/imgproc.hpp>

#include "cnnvis/core/errors.h"
#include "cnnvis/methods/activation_max.h"
#include "cnnvis/methods/fv_transforms.h"
#include "cnnvis/methods/image_param.h"
#include "cnnvis/models/network.h"

namespace cnnvis {

namespace {

at::Tensor mat_to_tensor(const cv::Mat& rgb32, const at::Device& device) {
  cv::Mat m = rgb32.isContinuous() ? rgb32 : rgb32.clone();
  at::Tensor t = at::from_blob(m.ptr<float>(), {1, m.rows, m.cols, 3}, at::kFloat).permute({0, 3, 1, 2}).contiguous();
  return t.to(device);
}

cv::Mat tensor_to_mat(const at::Tensor& nchw) {
  at::Tensor t = nchw[0].detach().to(at::kCPU, at::kFloat).permute({1, 2, 0}).contiguous();
  cv::Mat out(static_cast<int>(t.size(0)), static_cast<int>(t.size(1)), CV_32FC3);
  std::memcpy(out.ptr<float>(), t.data_ptr<float>(), sizeof(float) * t.numel());
  return out;
}

at::Tensor dream_objective(Network& net, const ModelCard& card, const ForwardRequest& request, const at::Tensor& x01) {
  const ForwardResult fwd = net.forward(normalize_for_model(x01, card), request);
  at::Tensor total = at::zeros({}, x01.options());
  for (const auto& name : request.taps) total = total + fwd.taps.at(name).pow(2).mean();
  return total;
}

}  // namespace

DeepDreamResult run_deepdream(LoadedModel& model, const cv::Mat& image_rgb8, const DeepDreamOptions& options) {
  if (image_rgb8.empty() || image_rgb8.type() != CV_8UC3) throw UsageError("deep dream needs an 8-bit RGB image");
  if (options.layers.empty()) throw UsageError("deep dream needs at least one layer");
  if (options.octaves < 1 || options.steps < 0 || !(options.octave_scale > 1.0f) || !(options.step_size > 0))
    throw UsageError("deep dream needs octaves >= 1, steps >= 0, octave scale > 1 and step size > 0");
  ForwardRequest request;
  request.need_logits = false;
  for (const auto& layer : options.layers) {
    const std::string canonical = model.resolve_layer(layer);
    if (std::find(request.taps.begin(), request.taps.end(), canonical) == request.taps.end()) request.taps.push_back(canonical);
  }
  Network& net = model.network();
  const ModelCard& card = model.card();
  const at::Device device(model.device());
  at::AutoGradMode grad_mode(true);
  ScopedReluMode relu_mode(net, ReluMode::standard);

  cv::Mat base;
  image_rgb8.convertTo(base, CV_32FC3, 1.0 / 255.0);
  if (options.max_side > 0 && std::max(base.cols, base.rows) > options.max_side) {
    const double s = static_cast<double>(options.max_side) / std::max(base.cols, base.rows);
    cv::resize(base, base, cv::Size(std::max(1, static_cast<int>(std::lround(base.cols * s))),
                                    std::max(1, static_cast<int>(std::lround(base.rows * s)))),
               0, 0, cv::INTER_AREA);
  }
  // The octave pyramid, largest first; stop before a side gets too small for the network's pooling.
  std::vector<cv::Mat> octaves = {base};
  while (static_cast<int>(octaves.size()) < options.octaves) {
    const cv::Mat& last = octaves.back();
    const int w = static_cast<int>(std::lround(last.cols / options.octave_scale));
    const int h = static_cast<int>(std::lround(last.rows / options.octave_scale));
    if (std::min(w, h) < 32) break;
    cv::Mat smaller;
    cv::resize(last, smaller, cv::Size(w, h), 0, 0, cv::INTER_AREA);
    octaves.push_back(smaller);
  }

  DeepDreamResult result;
  {
    at::NoGradGuard no_grad;
    result.objective_start = dream_objective(net, card, request, mat_to_tensor(base, device)).item<float>();
  }
  FeatureVisRng rng(options.seed);
  at::Tensor detail;  // what the dream has added so far, at the current octave's size
  at::Tensor x;
  const std::size_t total = octaves.size() * static_cast<std::size_t>(options.steps);
  std::size_t done = 0;
  for (auto it = octaves.rbegin(); it != octaves.rend(); ++it) {
    at::Tensor octave_base = mat_to_tensor(*it, device);
    const int64_t h = octave_base.size(2), w = octave_base.size(3);
    if (detail.defined()) {
      detail = at::upsample_bilinear2d(detail, {h, w}, false);
    } else {
      detail = at::zeros_like(octave_base);
    }
    x = (octave_base + detail).clamp(0, 1);
    for (int step = 0; step < options.steps; ++step) {
      const int64_t dy = options.jitter > 0 ? rng.uniform_int(-options.jitter, options.jitter) : 0;
      const int64_t dx = options.jitter > 0 ? rng.uniform_int(-options.jitter, options.jitter) : 0;
      at::Tensor shifted = at::roll(x, {dy, dx}, {2, 3}).detach().requires_grad_(true);
      dream_objective(net, card, request, shifted).backward();
      at::Tensor g = at::roll(shifted.grad(), {-dy, -dx}, {2, 3});
      const double mean_abs = g.abs().mean().item<double>();
      if (mean_abs > 0) x = (x + g * (options.step_size / mean_abs)).clamp(0, 1);
      if (options.progress) options.progress(++done, total, "steps");
    }
    detail = x - octave_base;
  }
  {
    at::NoGradGuard no_grad;
    result.objective_final = dream_objective(net, card, request, x).item<float>();
  }
  cv::Mat out = tensor_to_mat(x);
  out.convertTo(result.image, CV_8UC3, 255.0);
  return result;
}

}  // namespace cnnvis
