#include "cnnvis/methods/backprop.h"

#include <cstdint>
#include <cstring>
#include <optional>

#include <ATen/ATen.h>
#include <opencv2/core.hpp>

#include "cnnvis/core/errors.h"
#include "cnnvis/methods/lrp.h"
#include "cnnvis/models/torchscript.h"
#include "cnnvis/methods/prediction_util.h"
#include "cnnvis/methods/tensor_image.h"
#include "cnnvis/models/network.h"

namespace cnnvis {

namespace {

ReluMode relu_mode_for(BackpropMode mode) {
  switch (mode) {
    case BackpropMode::vanilla: return ReluMode::standard;
    case BackpropMode::guided: return ReluMode::guided;
    case BackpropMode::deconv: return ReluMode::deconv;
    default: return ReluMode::standard;
  }
}

// 3 x H x W tensor (any device) -> H x W x 3 CV_32FC3 (owning copy).
cv::Mat chw_to_mat(const at::Tensor& chw) {
  at::Tensor t = chw.detach().to(at::kCPU, at::kFloat).permute({1, 2, 0}).contiguous();
  cv::Mat out(static_cast<int>(t.size(0)), static_cast<int>(t.size(1)), CV_32FC3);
  std::memcpy(out.ptr<float>(), t.data_ptr<float>(), sizeof(float) * t.numel());
  return out;
}

std::optional<LrpPreset> lrp_preset_of(BackpropMode mode) {
  switch (mode) {
    case BackpropMode::lrp_epsilon: return LrpPreset::epsilon;
    case BackpropMode::lrp_epsilon_plus: return LrpPreset::epsilon_plus;
    case BackpropMode::lrp_epsilon_plus_flat: return LrpPreset::epsilon_plus_flat;
    case BackpropMode::lrp_epsilon_plus_box: return LrpPreset::epsilon_plus_box;
    default: return std::nullopt;
  }
}

std::vector<BackpropResult> run_lrp(LoadedModel& model, const at::Tensor& x, const TargetSpec& target, LrpPreset preset,
                                    double epsilon) {
  if (!(epsilon > 0)) throw UsageError("the LRP epsilon must be > 0");
  const ModelCard& card = model.card();
  LrpOptions options;
  options.preset = preset;
  options.epsilon = epsilon;
  // z-box bounds: the normalised values of the darkest and brightest pixel, per channel.
  std::vector<float> low, high;
  for (int c = 0; c < 3; ++c) {
    low.push_back((0.0f - card.mean[c]) / card.std[c]);
    high.push_back((card.input_range - card.mean[c]) / card.std[c]);
  }
  options.low = at::tensor(low).view({1, 3, 1, 1});
  options.high = at::tensor(high).view({1, 3, 1, 1});
  at::Tensor logits;
  {
    at::NoGradGuard no_grad;
    logits = model.network().forward(x).logits;
  }
  const int64_t n = x.size(0);
  const at::Tensor classes =
      target.top ? logits.argmax(1) : at::full({n}, target.index, at::TensorOptions().dtype(at::kLong).device(logits.device()));
  const at::Tensor relevance = lrp_relevance(model.network(), x, classes, options);
  const at::Tensor positive = at::relu(relevance.sum(1));
  const auto top = top_predictions(logits, card, 5);
  const std::vector<Prediction> targets = class_predictions(logits, classes, card);
  std::vector<BackpropResult> out(n);
  for (int64_t i = 0; i < n; ++i) {
    out[i].target = targets[i];
    out[i].top = top[i];
    out[i].gradient = chw_to_mat(relevance[i]);
    out[i].magnitude = tensor_to_map(positive[i]);
  }
  return out;
}

}  // namespace

BackpropMode parse_backprop_mode(const std::string& text) {
  if (text == "vanilla") return BackpropMode::vanilla;
  if (text == "guided") return BackpropMode::guided;
  if (text == "deconv" || text == "deconvnet") return BackpropMode::deconv;
  if (text == "lrp-epsilon") return BackpropMode::lrp_epsilon;
  if (text == "lrp-epsilon-plus") return BackpropMode::lrp_epsilon_plus;
  if (text == "lrp-epsilon-plus-flat" || text == "lrp") return BackpropMode::lrp_epsilon_plus_flat;
  if (text == "lrp-epsilon-plus-box") return BackpropMode::lrp_epsilon_plus_box;
  throw UsageError("unknown backprop mode '" + text +
                   "' (choose guided, deconv, vanilla, lrp-epsilon, lrp-epsilon-plus, lrp-epsilon-plus-flat or "
                   "lrp-epsilon-plus-box)");
}

const char* backprop_mode_name(BackpropMode mode) {
  switch (mode) {
    case BackpropMode::vanilla: return "vanilla";
    case BackpropMode::guided: return "guided";
    case BackpropMode::deconv: return "deconv";
    case BackpropMode::lrp_epsilon: return "lrp-epsilon";
    case BackpropMode::lrp_epsilon_plus: return "lrp-epsilon-plus";
    case BackpropMode::lrp_epsilon_plus_flat: return "lrp-epsilon-plus-flat";
    case BackpropMode::lrp_epsilon_plus_box: return "lrp-epsilon-plus-box";
  }
  return "?";
}

std::vector<BackpropResult> run_backprop(LoadedModel& model, const std::vector<cv::Mat>& inputs,
                                         const BackpropOptions& options) {
  const TargetSpec target = parse_target(options.target, model.card(), model.num_classes());
  if (inputs.empty()) return {};
  Network& net = model.network();
  // A caller inside a no-grad or inference scope would otherwise get no gradient at all.
  at::AutoGradMode grad_mode(true);
  ScopedReluMode relu_guard(net, relu_mode_for(options.mode));

  at::Tensor x = images_to_tensor(inputs, model.card(), at::Device(model.device()));
  const std::optional<LrpPreset> preset = lrp_preset_of(options.mode);
  if (preset) return run_lrp(model, x, target, *preset, options.lrp_epsilon);
  x.requires_grad_(true);
  // The guided and deconv ReLUs change only the backward pass, so these logits are the model's own.
  at::Tensor logits = net.forward(x).logits;
  const int64_t n = x.size(0);
  at::Tensor classes = target.top ? logits.argmax(1)
                                  : at::full({n}, target.index, at::TensorOptions().dtype(at::kLong).device(logits.device()));
  // Images in a batch are independent (eval mode), so one backward of the summed scores gives every
  // image its own input gradient.
  logits.gather(1, classes.unsqueeze(1)).sum().backward();
  at::Tensor grads = x.grad().detach();
  at::Tensor magnitude = std::get<0>(grads.abs().max(1));  // N x H x W

  auto top = top_predictions(logits, model.card(), 5);
  const std::vector<Prediction> targets = class_predictions(logits, classes, model.card());
  std::vector<BackpropResult> out(n);
  for (int64_t i = 0; i < n; ++i) {
    BackpropResult& r = out[i];
    r.target = targets[i];
    r.top = top[i];
    r.gradient = chw_to_mat(grads[i]);
    r.magnitude = tensor_to_map(magnitude[i]);
  }
  return out;
}

void check_backprop_request(const LoadedModel& model, const BackpropOptions& options) {
  if (!lrp_preset_of(options.mode)) return;
  if (!(options.lrp_epsilon > 0)) throw UsageError("the LRP epsilon must be > 0");
  // A TorchScript operator without a rule fails the request before any image is read.
  if (!model.network().native()) check_script_relevance(model.network());
}

cv::Mat gradient_to_display(const cv::Mat& gradient_rgb) {
  if (gradient_rgb.depth() != CV_32F) throw UsageError("gradient_to_display needs a float (CV_32F) image");
  // Statistics over every pixel and channel together, like numpy's mean/std of the whole array.
  cv::Mat flat = (gradient_rgb.isContinuous() ? gradient_rgb : gradient_rgb.clone()).reshape(1, 1);
  cv::Scalar mean, sd;
  cv::meanStdDev(flat, mean, sd);
  cv::Mat scaled;
  gradient_rgb.convertTo(scaled, CV_32F, 0.1 / (sd[0] + 1e-5), 0.5 - 0.1 * mean[0] / (sd[0] + 1e-5));
  // Clip, then truncate like numpy's uint8(x * 255) rather than round (convertTo would round).
  cv::Mat non_negative = cv::max(scaled, 0.0);
  cv::Mat clipped = cv::min(non_negative, 1.0);
  cv::Mat out(gradient_rgb.size(), CV_MAKETYPE(CV_8U, gradient_rgb.channels()));
  const int channels = gradient_rgb.channels();
  for (int y = 0; y < clipped.rows; ++y) {
    const float* src = clipped.ptr<float>(y);
    std::uint8_t* dst = out.ptr<std::uint8_t>(y);
    for (int k = 0; k < clipped.cols * channels; ++k) dst[k] = static_cast<std::uint8_t>(src[k] * 255.0f);
  }
  return out;
}

}  // namespace cnnvis
