#include "cnnvis/methods/gradcam.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include <ATen/ATen.h>
#include <opencv2/imgproc.hpp>

#include "cnnvis/core/errors.h"
#include "cnnvis/core/text.h"
#include "cnnvis/methods/ablation_cam.h"
#include "cnnvis/methods/eigen_cam.h"
#include "cnnvis/methods/full_grad.h"
#include "cnnvis/methods/prediction_util.h"
#include "cnnvis/methods/score_cam.h"
#include "cnnvis/methods/tensor_image.h"
#include "cnnvis/models/layers.h"
#include "cnnvis/models/network.h"

namespace cnnvis {

namespace {
const std::vector<std::pair<CamMethod, std::string>>& method_table() {
  static const std::vector<std::pair<CamMethod, std::string>> table = {
      {CamMethod::gradcam, "gradcam"},   {CamMethod::gradcam_plus_plus, "gradcam++"},
      {CamMethod::xgradcam, "xgradcam"}, {CamMethod::layercam, "layercam"},
      {CamMethod::hirescam, "hirescam"}, {CamMethod::cam, "cam"},
      {CamMethod::eigencam, "eigencam"}, {CamMethod::eigengradcam, "eigengradcam"},
      {CamMethod::scorecam, "scorecam"}, {CamMethod::ablationcam, "ablationcam"},
      {CamMethod::fullgrad, "fullgrad"}};
  return table;
}
}  // namespace

CamMethod parse_cam_method(const std::string& text) {
  for (const auto& [method, name] : method_table()) {
    if (name == text) return method;
  }
  if (text == "gradcampp") return CamMethod::gradcam_plus_plus;
  throw UsageError("unknown CAM method '" + text + "' (choose " + join(cam_method_names(), ", ") + ")");
}

const char* cam_method_name(CamMethod method) {
  for (const auto& [m, name] : method_table()) {
    if (m == method) return name.c_str();
  }
  return "?";
}

std::vector<std::string> cam_method_names() {
  std::vector<std::string> names;
  for (const auto& [method, name] : method_table()) names.push_back(name);
  return names;
}

TargetSpec parse_target(const std::string& text, const ModelCard& card, int num_classes) {
  TargetSpec spec;
  spec.text = text;
  if (text.empty() || text == "top") return spec;
  spec.top = false;
  const bool numeric = !text.empty() && std::all_of(text.begin() + (text[0] == '-' ? 1 : 0), text.end(),
                                                    [](unsigned char c) { return std::isdigit(c); }) &&
                       text != "-";
  if (numeric) {
    const long value = text.size() > 9 ? -1 : std::stol(text);
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

namespace {

// The last linear layer, when `layer` feeds it through global average pooling only (CAM's condition).
const Linear* cam_head(const Network& net, const std::string& layer, int64_t channels) {
  const Linear* last = nullptr;
  for (const Node* node : net.nodes()) {
    if (auto* linear = dynamic_cast<const Linear*>(node)) last = linear;
  }
  if (last == nullptr || last->in_features != channels) return nullptr;
  // Between the layer and the head only pooling, flattening and dropout may run.
  bool after = false;
  for (const Node* node : net.nodes()) {
    if (node->name() == layer) {
      after = true;
      continue;
    }
    if (!after || node == last) continue;
    if (!node->children().empty()) continue;  // containers: their leaves are checked
    if (node->name().rfind(layer + ".", 0) == 0) continue;  // inside the layer itself
    const std::string& type = node->type();
    if (type != "AdaptiveAvgPool2d" && type != "Flatten" && type != "Dropout") return nullptr;
  }
  return after ? last : nullptr;
}

bool gradient_free(CamMethod m) {
  return m == CamMethod::cam || m == CamMethod::eigencam || m == CamMethod::scorecam || m == CamMethod::ablationcam;
}

bool needs_gradients(const std::vector<CamMethod>& methods) {
  return std::any_of(methods.begin(), methods.end(), [](CamMethod m) { return !gradient_free(m); });
}

// N x h x w maps from activations a and gradients g (both N x C x h x w) for one method.
at::Tensor compute_cam(CamMethod method, const at::Tensor& a, const at::Tensor& g, const at::Tensor& head_weights) {
  switch (method) {
    case CamMethod::gradcam:
      return at::relu((g.mean({2, 3}, true) * a).sum(1));
    case CamMethod::gradcam_plus_plus: {
      // Closed form under an exponential output (pytorch-grad-cam); alpha = 0 where g == 0.
      const at::Tensor g2 = g.pow(2), g3 = g.pow(3);
      at::Tensor alpha = g2 / (2 * g2 + a.sum({2, 3}, true) * g3 + 1e-7);
      alpha = at::where(g != 0, alpha, at::zeros_like(alpha));
      return at::relu(((at::relu(g) * alpha).sum({2, 3}, true) * a).sum(1));
    }
    case CamMethod::xgradcam:
      return at::relu((((g * a).sum({2, 3}, true) / (a.sum({2, 3}, true) + 1e-7)) * a).sum(1));
    case CamMethod::layercam:
      return at::relu((at::relu(g) * a).sum(1));
    case CamMethod::hirescam:
      return at::relu((g * a).sum(1));
    case CamMethod::cam:
      // head_weights: N x C (the linear weights of each image's target class).
      return at::relu((head_weights.unsqueeze(2).unsqueeze(3) * a).sum(1));
    case CamMethod::eigencam:
      return at::relu(first_component_projection(a));
    case CamMethod::eigengradcam:
      return at::relu(first_component_projection(g * a));
    case CamMethod::scorecam:
    case CamMethod::ablationcam:
    case CamMethod::fullgrad:
      break;  // from perturbed logits or every layer's gradient, in run_cams
  }
  throw std::logic_error("unhandled CAM method");
}

}  // namespace

std::vector<std::string> check_cam_request(const LoadedModel& model, const CamRequest& request) {
  if (request.methods.empty()) throw UsageError("no CAM method asked for");
  if (request.top_k < 0) throw UsageError("--top-k must be >= 0");
  const Network& net = model.network();
  std::vector<std::string> layers;
  for (const auto& name : request.layers.empty() ? std::vector<std::string>{model.card().default_layer} : request.layers) {
    const std::string canonical = net.resolve_layer(name);
    if (std::find(layers.begin(), layers.end(), canonical) == layers.end()) layers.push_back(canonical);
  }
  for (const auto& t : request.targets) parse_target(t, model.card(), net.num_classes());
  if (std::find(request.methods.begin(), request.methods.end(), CamMethod::fullgrad) != request.methods.end()) {
    biased_layers(net);  // throws for a network it cannot read biases from
  }
  if (request.perturbation_batch < 1) throw UsageError("the perturbation batch size must be at least 1");
  return layers;
}

std::vector<ImageCams> run_cams(LoadedModel& model, const std::vector<cv::Mat>& inputs, const CamRequest& request) {
  const std::vector<std::string> layers = check_cam_request(model, request);
  if (inputs.empty()) return {};
  Network& net = model.network();
  std::vector<TargetSpec> specs;
  for (const auto& t : request.targets) specs.push_back(parse_target(t, model.card(), net.num_classes()));
  if (specs.empty() && request.top_k == 0) specs.push_back(parse_target("top", model.card(), net.num_classes()));

  at::Tensor x = images_to_tensor(inputs, model.card(), at::Device(model.device()));
  const bool gradients = needs_gradients(request.methods);
  ForwardRequest forward;
  forward.taps = layers;
  if (gradients) forward.grad_taps = layers;
  // FullGrad needs the input's gradient and the gradient at every biased layer: the backward pass then
  // runs to the input for the whole request.
  const bool full_grad = std::find(request.methods.begin(), request.methods.end(), CamMethod::fullgrad) != request.methods.end();
  std::vector<BiasedLayer> biased;
  if (full_grad) {
    biased = biased_layers(net);
    x.requires_grad_(true);
    for (const BiasedLayer& b : biased) {
      if (std::find(forward.taps.begin(), forward.taps.end(), b.name) != forward.taps.end()) continue;
      forward.taps.push_back(b.name);
      forward.grad_taps.push_back(b.name);
    }
  }
  ForwardResult result;
  if (gradients) {
    result = net.forward(x, forward);
  } else {
    at::NoGradGuard no_grad;
    result = net.forward(x, forward);
  }
  const int64_t n = x.size(0);
  at::Tensor logits = result.logits.detach();
  for (const auto& layer : layers) {
    if (result.taps.at(layer).dim() != 4) {
      throw UsageError("layer '" + layer + "' has no spatial dimensions (output " +
                       std::to_string(result.taps.at(layer).dim() - 1) +
                       "-D); class activation maps need a convolutional layer (C x H x W)");
    }
  }

  // Target classes per image: explicit ones first, then the top-k, without repeats.
  at::Tensor logits_cpu = logits.to(at::kCPU, at::kFloat);
  at::Tensor probs = at::softmax(logits_cpu, 1);
  const auto top = top_predictions(logits_cpu, model.card(), std::max(5, request.top_k));
  std::vector<std::vector<int>> targets(n);
  for (int64_t i = 0; i < n; ++i) {
    auto add = [&](int c) {
      if (std::find(targets[i].begin(), targets[i].end(), c) == targets[i].end()) targets[i].push_back(c);
    };
    for (const auto& spec : specs) add(spec.top ? top[i].front().index : spec.index);
    for (int k = 0; k < request.top_k && k < static_cast<int>(top[i].size()); ++k) add(top[i][k].index);
  }
  std::size_t slots = 0;
  for (const auto& t : targets) slots = std::max(slots, t.size());

  std::vector<ImageCams> out(n);
  for (int64_t i = 0; i < n; ++i) out[i].top.assign(top[i].begin(), top[i].begin() + std::min<std::size_t>(5, top[i].size()));

  std::map<std::string, at::Tensor> eigen_cams;  // per layer
  // Logits of the perturbed copies (N x C x classes), per layer and method: the same for every target.
  std::map<std::pair<std::string, CamMethod>, at::Tensor> perturbed;
  auto perturbed_logits = [&](const std::string& layer, CamMethod method, const at::Tensor& a) -> const at::Tensor& {
    auto it = perturbed.find({layer, method});
    if (it != perturbed.end()) return it->second;
    at::Tensor p = method == CamMethod::scorecam
                       ? score_cam_logits(net, x, a, request.perturbation_batch, request.progress)
                       : ablation_cam_logits(net, layer, x, a, logits, request.perturbation_batch, request.progress);
    return perturbed.emplace(std::make_pair(layer, method), std::move(p)).first->second;
  };
  for (std::size_t slot = 0; slot < slots; ++slot) {
    std::vector<int64_t> classes(n, 0);
    at::Tensor selector = at::zeros_like(logits);
    for (int64_t i = 0; i < n; ++i) {
      if (slot < targets[i].size()) {
        classes[i] = targets[i][slot];
        selector[i][classes[i]] = 1.0;
      }
    }
    std::map<std::string, at::Tensor> grads;
    if (gradients) {
      // d(sum over images of each one's target logit): images are independent in eval mode, so each
      // image gets its own gradient. The graph is kept while more target slots follow.
      for (const auto& layer : forward.grad_taps) {
        at::Tensor& g = result.taps.at(layer).mutable_grad();
        if (g.defined()) g.zero_();
      }
      if (x.grad().defined()) x.mutable_grad().zero_();
      result.logits.backward(selector, /*retain_graph=*/slot + 1 < slots);
      for (const auto& layer : layers) grads[layer] = result.taps.at(layer).grad().detach().clone();
    }
    at::NoGradGuard no_grad;
    at::Tensor full_grad_cams;
    if (full_grad) {
      std::vector<at::Tensor> biased_grads;
      for (const BiasedLayer& b : biased) biased_grads.push_back(result.taps.at(b.name).grad());
      full_grad_cams = full_grad_map(x, x.grad(), biased, biased_grads);
    }
    for (const auto& layer : layers) {
      const at::Tensor a = result.taps.at(layer).detach();
      for (CamMethod method : request.methods) {
        // FullGrad is one map of the whole network, not of a layer: given once, with the first layer.
        if (method == CamMethod::fullgrad && layer != layers.front()) continue;
        at::Tensor head;
        if (method == CamMethod::cam) {
          const Linear* fc = cam_head(net, layer, a.size(1));
          if (fc == nullptr && !net.native()) {
            throw UsageError("CAM reads the weights of a native global-average-pool + linear head; " +
                             net.architecture() + " is a TorchScript model: use gradcam (on such a head it gives " +
                             "the same map as CAM)");
          }
          if (fc == nullptr) {
            throw UsageError("CAM needs a global-average-pool + linear head right after the layer; layer '" + layer +
                             "' of " + net.architecture() + " has none (use gradcam, or the last conv block of googlenet)");
          }
          at::Tensor index = at::tensor(classes, at::kLong).to(a.device());
          head = fc->weight.detach().index_select(0, index);
        }
        at::Tensor cams;
        if (method == CamMethod::eigencam) {
          // The same map for every class: decomposed once per layer, not once per target slot.
          auto it = eigen_cams.find(layer);
          if (it == eigen_cams.end()) it = eigen_cams.emplace(layer, compute_cam(method, a, {}, {})).first;
          cams = it->second;
        } else if (method == CamMethod::scorecam) {
          cams = score_cam_map(perturbed_logits(layer, method, a), a, classes);
        } else if (method == CamMethod::fullgrad) {
          cams = full_grad_cams;
        } else if (method == CamMethod::ablationcam) {
          cams = ablation_cam_map(perturbed_logits(layer, method, a), logits, a, classes);
        } else {
          cams = compute_cam(method, a, gradients ? grads[layer] : at::Tensor(), head);
        }
        at::Tensor normalized = normalize_maps(cams);
        for (int64_t i = 0; i < n; ++i) {
          if (slot >= targets[i].size()) continue;
          CamMap map;
          map.method = method;
          map.layer = method == CamMethod::fullgrad ? std::string("input") : layer;
          map.target.index = static_cast<int>(classes[i]);
          map.target.label = model.card().label(map.target.index);
          map.target.logit = logits_cpu[i][classes[i]].item<float>();
          map.target.probability = probs[i][classes[i]].item<float>();
          map.cam_layer = tensor_to_map(cams[i]);
          cv::resize(tensor_to_map(normalized[i]), map.cam, cv::Size(inputs[i].cols, inputs[i].rows), 0, 0,
                     cv::INTER_LINEAR);
          out[i].maps.push_back(std::move(map));
        }
      }
    }
  }
  return out;
}

std::vector<GradCamResult> run_gradcam(LoadedModel& model, const std::vector<cv::Mat>& inputs,
                                       const GradCamOptions& options) {
  CamRequest request;
  request.methods = {options.method};
  if (!options.layer.empty()) request.layers = {options.layer};
  request.targets = {options.target};
  std::vector<ImageCams> cams = run_cams(model, inputs, request);
  std::vector<GradCamResult> out;
  for (auto& image : cams) {
    CamMap& map = image.maps.front();
    out.push_back({map.layer, map.target, image.top, map.cam_layer, map.cam});
  }
  return out;
}

}  // namespace cnnvis
