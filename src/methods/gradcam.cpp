#include "cnnvis/methods/gradcam.h"

#include <algorithm>
#include <cctype>

#include <ATen/ATen.h>
#include <opencv2/imgproc.hpp>

#include "cnnvis/core/errors.h"
#include "cnnvis/methods/prediction_util.h"
#include "cnnvis/methods/tensor_image.h"
#include "cnnvis/models/network.h"

namespace cnnvis {

CamMethod parse_cam_method(const std::string& text) {
  if (text == "gradcam") return CamMethod::gradcam;
  if (text == "gradcam++" || text == "gradcampp") return CamMethod::gradcam_plus_plus;
  throw UsageError("unknown CAM method '" + text + "' (choose gradcam or gradcam++)");
}

const char* cam_method_name(CamMethod method) {
  return method == CamMethod::gradcam ? "gradcam" : "gradcam++";
}

TargetSpec parse_target(const std::string& text, const ModelCard& card, int num_classes) {
  TargetSpec spec;
  spec.text = text;
  if (text.empty() || text == "top") return spec;
  spec.top = false;
  const bool numeric = std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); }) ||
                       (text.size() > 1 && text[0] == '-' &&
                        std::all_of(text.begin() + 1, text.end(), [](unsigned char c) { return std::isdigit(c); }));
  if (numeric) {
    long value = text.size() > 9 ? -1 : std::stol(text);
    if (value < 0 || value >= num_classes) {
      throw UsageError("target " + text + " is out of range (model has classes 0.." + std::to_string(num_classes - 1) + ")");
    }
    spec.index = static_cast<int>(value);
    return spec;
  }
  spec.index = card.find_label(text);
  if (spec.index < 0) {
    throw UsageError("unknown class '" + text + "' for model " + card.name +
                     (card.labels.empty() ? " (its card has no class names; use an index 0.." +
                                                std::to_string(num_classes - 1) + ")"
                                          : " (use a class name from the model card, an index, or 'top')"));
  }
  return spec;
}

std::vector<GradCamResult> run_gradcam(LoadedModel& model, const std::vector<cv::Mat>& inputs,
                                       const GradCamOptions& options) {
  if (inputs.empty()) return {};
  Network& net = model.network();
  const std::string layer = net.resolve_layer(options.layer.empty() ? model.card().default_layer : options.layer);
  const TargetSpec target = parse_target(options.target, model.card(), net.num_classes());

  at::Tensor x = images_to_tensor(inputs, model.card(), at::Device(model.device()));
  ForwardRequest request;
  request.taps = {layer};
  request.grad_taps = {layer};
  ForwardResult result = net.forward(x, request);
  at::Tensor activations = result.taps.at(layer);
  if (activations.dim() != 4) {
    throw UsageError("layer '" + layer + "' has no spatial dimensions (output " + std::to_string(activations.dim() - 1) +
                     "-D); Grad-CAM needs a convolutional layer (C x H x W)");
  }
  const int64_t n = x.size(0);
  at::Tensor logits = result.logits;
  at::Tensor classes = target.top ? logits.argmax(1)
                                  : at::full({n}, target.index, at::TensorOptions().dtype(at::kLong).device(logits.device()));
  // Images in a batch are independent (eval mode), so one backward of the summed scores gives every
  // image's own gradient.
  logits.gather(1, classes.unsqueeze(1)).sum().backward();
  at::Tensor grads = activations.grad();

  at::Tensor cams;
  {
    at::NoGradGuard no_grad;
    at::Tensor a = activations.detach();
    at::Tensor weights;
    if (options.method == CamMethod::gradcam) {
      weights = grads.mean({2, 3}, true);
    } else {
      // Grad-CAM++ closed form under an exponential output: alpha = g^2 / (2 g^2 + sum(A) g^3).
      at::Tensor g2 = grads.pow(2);
      at::Tensor g3 = grads.pow(3);
      at::Tensor sum_a = a.sum({2, 3}, true);
      at::Tensor alpha = g2 / (2 * g2 + sum_a * g3 + 1e-7);
      alpha = at::where(grads != 0, alpha, at::zeros_like(alpha));
      weights = (at::relu(grads) * alpha).sum({2, 3}, true);
    }
    cams = at::relu((weights * a).sum(1));  // N x h x w
  }
  at::Tensor normalized = normalize_maps(cams);
  auto top = top_predictions(logits, model.card(), 5);
  at::Tensor probs = at::softmax(logits.detach(), 1).to(at::kCPU);
  at::Tensor logits_cpu = logits.detach().to(at::kCPU);
  at::Tensor classes_cpu = classes.to(at::kCPU);

  std::vector<GradCamResult> out(n);
  for (int64_t i = 0; i < n; ++i) {
    GradCamResult& r = out[i];
    r.layer = layer;
    r.target.index = static_cast<int>(classes_cpu[i].item<int64_t>());
    r.target.label = model.card().label(r.target.index);
    r.target.logit = logits_cpu[i][r.target.index].item<float>();
    r.target.probability = probs[i][r.target.index].item<float>();
    r.top = top[i];
    r.cam_layer = tensor_to_map(cams[i]);
    cv::resize(tensor_to_map(normalized[i]), r.cam, cv::Size(inputs[i].cols, inputs[i].rows), 0, 0, cv::INTER_LINEAR);
  }
  return out;
}

}  // namespace cnnvis
