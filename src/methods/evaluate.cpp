#include "cnnvis/methods/evaluate.h"

#include <algorithm>
#include <cmath>

#include <ATen/ATen.h>
#include <opencv2/imgproc.hpp>

#include "cnnvis/core/errors.h"
#include "cnnvis/methods/prediction_util.h"
#include "cnnvis/core/text.h"
#include "cnnvis/methods/backprop.h"
#include "cnnvis/methods/gradcam.h"
#include "cnnvis/methods/occlusion.h"
#include "cnnvis/methods/rise.h"
#include "cnnvis/methods/saliency.h"
#include "cnnvis/methods/target.h"
#include "cnnvis/methods/tensor_image.h"
#include "cnnvis/models/eval_scope.h"
#include "cnnvis/models/network.h"

namespace cnnvis {

cv::Mat checked_score_map(const cv::Mat& map, int target, int num_classes, int width, int height, const std::string& what) {
  if (target < 0 || target >= num_classes) throw UsageError(what + " target " + std::to_string(target) + " is out of range");
  if (map.empty() || map.channels() != 1) throw UsageError(what + " maps must be single-channel");
  cv::Mat out;
  map.convertTo(out, CV_32F);
  if (out.size() != cv::Size(width, height)) cv::resize(out, out, cv::Size(width, height), 0, 0, cv::INTER_LINEAR);
  cv::patchNaNs(out, 0.0);
  return out.clone();
}

float curve_area(const std::vector<float>& curve) {
  if (curve.size() < 2) return curve.empty() ? 0.0f : curve[0];
  double area = 0;
  for (std::size_t k = 1; k < curve.size(); ++k) area += 0.5 * (curve[k - 1] + curve[k]);
  return static_cast<float>(area / (curve.size() - 1));
}

std::vector<ExplanationScores> score_explanations(LoadedModel& model, const std::vector<cv::Mat>& inputs,
                                                  const std::vector<cv::Mat>& maps, const std::vector<int>& targets,
                                                  const EvaluateOptions& options) {
  if (options.steps < 1) throw UsageError("evaluation needs at least 1 step");
  if (options.batch_size < 1) throw UsageError("evaluation batch size must be at least 1");
  if (maps.size() != inputs.size() || targets.size() != inputs.size()) {
    throw UsageError("evaluation needs one map and one target per input");
  }
  Network& net = model.network();
  EvalScope scope(net);
  const ModelCard& card = model.card();
  const at::Device device(model.device());
  const int h = card.input_height, w = card.input_width;
  const int64_t pixels = static_cast<int64_t>(h) * w;
  const double sigma = options.insertion_blur_sigma > 0 ? options.insertion_blur_sigma : std::max(1.0, w / 45.0);

  std::vector<ExplanationScores> out;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    cv::Mat map = checked_score_map(maps[i], targets[i], model.num_classes(), w, h, "evaluation");

    const at::Tensor x = images_to_tensor({inputs[i]}, card, device);  // 1 x 3 x H x W
    cv::Mat blurred;
    cv::GaussianBlur(inputs[i], blurred, cv::Size(0, 0), sigma, sigma, cv::BORDER_REFLECT);
    const at::Tensor blur = images_to_tensor({blurred}, card, device);

    // Rank of every pixel in the map's order: highest value first, ties by raster index.
    at::Tensor values = at::from_blob(map.ptr<float>(), {pixels}, at::kFloat).clone();
    at::Tensor order = std::get<1>(at::sort(values, /*stable=*/true, /*dim=*/0, /*descending=*/true));
    at::Tensor rank = at::empty({pixels}, at::kLong).scatter_(0, order, at::arange(pixels, at::kLong));
    rank = rank.view({h, w}).to(device);

    const int steps = options.steps;
    std::vector<at::Tensor> masks;  // 1 where the pixel is removed (deletion) / put back (insertion)
    for (int k = 0; k <= steps; ++k) {
      const int64_t count = (pixels * k + steps - 1) / steps;  // ceil(k / steps of the pixels)
      masks.push_back((rank < count).to(at::kFloat));
    }
    at::Tensor m = at::stack(masks).unsqueeze(1);  // (steps + 1) x 1 x H x W
    const at::Tensor deleted = x * (1 - m);        // removed pixels become the mean colour (0)
    const at::Tensor inserted = blur * (1 - m) + x * m;

    ExplanationScores s;
    s.target = targets[i];
    s.deletion = target_probabilities(net, deleted, targets[i], options.batch_size);
    s.insertion = target_probabilities(net, inserted, targets[i], options.batch_size);
    s.probability = s.deletion.front();
    s.deletion_auc = curve_area(s.deletion);
    s.insertion_auc = curve_area(s.insertion);

    // Chattopadhay et al.: the image seen through the map scaled to [0, 1].
    double hi = 0;
    cv::minMaxLoc(map, nullptr, &hi);
    cv::Mat weights = hi > 0 ? cv::max(map, 0.0) / hi : cv::Mat::zeros(h, w, CV_32F);
    at::Tensor wt = at::from_blob(weights.ptr<float>(), {1, 1, h, w}, at::kFloat).clone().to(device);
    s.masked_probability = target_probabilities(net, x * wt, targets[i], 1)[0];
    s.drop = s.probability > 0 ? std::max(0.0f, s.probability - s.masked_probability) / s.probability : 0.0f;
    s.increase = s.masked_probability > s.probability;
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<std::string> explanation_method_names() {
  std::vector<std::string> names = cam_method_names();
  for (const char* name : {"backprop-guided", "backprop-deconv", "backprop-vanilla", "backprop-lrp-epsilon",
                           "backprop-lrp-epsilon-plus", "backprop-lrp-epsilon-plus-flat", "backprop-lrp-epsilon-plus-box",
                           "saliency", "smoothgrad", "smoothgrad-squared", "vargrad", "integrated-gradients",
                           "input-x-gradient", "occlusion", "rise"}) {
    names.push_back(name);
  }
  return names;
}

std::vector<Explanation> explain(LoadedModel& model, const std::vector<cv::Mat>& inputs, const std::string& method,
                                 const std::string& target) {
  std::vector<Explanation> out;
  const auto names = cam_method_names();
  const auto names_all = explanation_method_names();
  if (std::find(names.begin(), names.end(), method) != names.end()) {
    GradCamOptions o;
    o.method = parse_cam_method(method);
    o.target = target;
    for (auto& r : run_gradcam(model, inputs, o)) out.push_back({r.cam, r.target.index});
  } else if (method.rfind("backprop-", 0) == 0 &&
             std::find(names_all.begin(), names_all.end(), method) != names_all.end()) {
    // The magnitude map: for LRP the positive relevance per pixel.
    BackpropOptions o;
    o.mode = parse_backprop_mode(method.substr(9));
    o.target = target;
    for (auto& r : run_backprop(model, inputs, o)) out.push_back({r.magnitude, r.target.index});
  } else if (method == "saliency" || method == "smoothgrad" || method == "smoothgrad-squared" || method == "vargrad" ||
             method == "integrated-gradients" || method == "input-x-gradient") {
    SaliencyOptions o;
    o.target = target;
    if (method == "smoothgrad") o.smooth_samples = 16;
    if (method == "smoothgrad-squared" || method == "vargrad") {
      o.method = method == "vargrad" ? SaliencyMethod::vargrad : SaliencyMethod::smoothgrad_sq;
      o.smooth_samples = 16;
    }
    if (method == "input-x-gradient") o.method = SaliencyMethod::input_x_gradient;
    if (method == "integrated-gradients") o.integrated_steps = 16;
    for (auto& r : run_saliency(model, inputs, o)) out.push_back({r.map, r.target.index});
  } else if (method == "rise") {
    RiseOptions o;  // RISE's defaults: 4000 masks of 7 x 7 cells, p = 0.5, seed 0
    o.target = target;
    for (auto& r : run_rise(model, inputs, o)) out.push_back({r.map, r.target.index});
  } else if (method == "occlusion") {
    OcclusionOptions o;
    o.target = target;
    // A patch of about 1/7 of the input and half of it as stride (32/16 at 224 px).
    o.patch = std::max(2, model.card().input_width / 7);
    o.stride = std::max(1, o.patch / 2);
    for (auto& r : run_occlusion(model, inputs, o)) out.push_back({r.map, r.target.index});
  } else {
    throw UsageError("unknown explanation method '" + method + "' (choose from " +
                     list_for_message(explanation_method_names(), 40) + ")");
  }
  return out;
}

}  // namespace cnnvis
