#include "cnnvis/methods/fv_objectives.h"

#include <algorithm>
#include <set>

#include <ATen/ATen.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/models/loaded_model.h"

namespace cnnvis {

namespace {

const LayerInfo* find_layer_info(const std::vector<LayerInfo>& layers, const std::string& name) {
  for (const LayerInfo& info : layers)
    if (info.name == name) return &info;
  return nullptr;
}

}  // namespace

std::vector<ResolvedObjective> resolve_objectives(const LoadedModel& model, const std::vector<Objective>& objectives) {
  if (objectives.empty()) throw UsageError("no objective given");
  std::vector<LayerInfo> layers;
  std::vector<ResolvedObjective> out;
  for (const Objective& o : objectives) {
    ResolvedObjective r;
    r.spec = o;
    if (o.kind == ObjectiveKind::class_logit) {
      if (o.channel < 0 || o.channel >= model.num_classes())
        throw UsageError("class " + std::to_string(o.channel) + " is out of range 0.." +
                         std::to_string(model.num_classes() - 1));
      out.push_back(std::move(r));
      continue;
    }
    r.layer = model.resolve_layer(o.layer);
    if (layers.empty()) layers = model.layers();
    const LayerInfo* info = find_layer_info(layers, r.layer);
    if (info == nullptr || info->output_shape.empty())
      throw UsageError("layer '" + o.layer + "' has no output to visualise");
    const int64_t channels = info->output_shape[0];
    if ((o.kind == ObjectiveKind::channel || o.kind == ObjectiveKind::neuron) && (o.channel < 0 || o.channel >= channels))
      throw UsageError("channel " + std::to_string(o.channel) + " is out of range 0.." + std::to_string(channels - 1) +
                       " for layer " + o.layer);
    if ((o.kind == ObjectiveKind::neuron) && info->output_shape.size() != 3)
      throw UsageError("layer '" + o.layer + "' has no spatial map; use a channel or class objective");
    if (o.kind == ObjectiveKind::direction || o.kind == ObjectiveKind::direction_neuron) {
      if (static_cast<int64_t>(o.direction.size()) != channels)
        throw UsageError("direction has " + std::to_string(o.direction.size()) + " values but layer " + o.layer +
                         " has " + std::to_string(channels) + " channels");
      r.direction = at::tensor(o.direction, at::kFloat).to(at::Device(model.device()));
    }
    out.push_back(std::move(r));
  }
  return out;
}

ForwardRequest objective_request(const std::vector<ResolvedObjective>& objectives) {
  ForwardRequest request;
  std::set<std::string> taps;
  bool logits = false;
  for (const ResolvedObjective& o : objectives) {
    if (o.layer.empty()) {
      logits = true;
    } else {
      taps.insert(o.layer);
    }
  }
  request.taps.assign(taps.begin(), taps.end());
  request.need_logits = logits;
  return request;
}

at::Tensor objective_values(const std::vector<ResolvedObjective>& objectives,
                            const std::vector<std::size_t>& objective_of_image, const ForwardResult& forward) {
  std::vector<at::Tensor> values;
  values.reserve(objective_of_image.size());
  for (std::size_t i = 0; i < objective_of_image.size(); ++i) {
    const ResolvedObjective& o = objectives[objective_of_image[i]];
    const int64_t n = static_cast<int64_t>(i);
    if (o.spec.kind == ObjectiveKind::class_logit) {
      values.push_back(forward.logits[n][o.spec.channel]);
      continue;
    }
    const at::Tensor a = forward.taps.at(o.layer)[n];  // C x h x w (or C for vectors)
    switch (o.spec.kind) {
      case ObjectiveKind::channel:
        values.push_back(a[o.spec.channel].mean());
        break;
      case ObjectiveKind::neuron: {
        const int64_t h = a.size(1), w = a.size(2);
        const int64_t y = o.spec.y < 0 ? h / 2 : o.spec.y, x = o.spec.x < 0 ? w / 2 : o.spec.x;
        if (y >= h || x >= w)
          throw UsageError("neuron (" + std::to_string(x) + "," + std::to_string(y) + ") is outside the " +
                           std::to_string(w) + "x" + std::to_string(h) + " map of " + o.spec.layer);
        values.push_back(a[o.spec.channel][y][x]);
        break;
      }
      case ObjectiveKind::direction:
      case ObjectiveKind::direction_neuron: {
        at::Tensor h = a.reshape({a.size(0), -1});  // C x positions
        if (o.spec.kind == ObjectiveKind::direction_neuron && a.dim() == 3) {
          const int64_t mh = a.size(1), mw = a.size(2);
          const int64_t y = o.spec.y < 0 ? mh / 2 : o.spec.y, x = o.spec.x < 0 ? mw / 2 : o.spec.x;
          if (y >= mh || x >= mw)
            throw UsageError("position (" + std::to_string(x) + "," + std::to_string(y) + ") is outside the " +
                             std::to_string(mw) + "x" + std::to_string(mh) + " map of " + o.spec.layer);
          h = a.select(2, x).select(1, y).unsqueeze(1);  // C x 1
        }
        const at::Tensor dot = o.direction.matmul(h);  // positions
        if (o.spec.cosine_power == 0.0f) {
          values.push_back(dot.mean());
        } else {
          const at::Tensor cosine = dot / (h.norm(2, {0}) * o.direction.norm() + 1e-8);
          values.push_back((dot * cosine.clamp_min(0.1).pow(o.spec.cosine_power)).mean());
        }
        break;
      }
      case ObjectiveKind::deepdream:
        values.push_back(a.pow(2).mean());
        break;
      case ObjectiveKind::class_logit:
        break;
    }
  }
  return at::stack(values);
}

at::Tensor diversity_term(const at::Tensor& activations) {
  const int64_t n = activations.size(0);
  if (n < 2) return at::zeros({}, activations.options());
  at::Tensor flat = activations.reshape({n, activations.size(1), -1});  // n x C x P
  at::Tensor grams = flat.matmul(flat.transpose(1, 2));                 // n x C x C
  at::Tensor norms = grams.reshape({n, -1}).norm(2, {1}).clamp_min(1e-10).view({n, 1, 1});
  at::Tensor g = (grams / norms).reshape({n, -1});
  at::Tensor pairs = g.matmul(g.t());  // n x n inner products
  return (pairs.sum() - pairs.diagonal().sum()) / static_cast<double>(n);
}

at::Tensor image_penalties(const at::Tensor& images, float l2, float tv, float blur) {
  const int64_t n = images.size(0);
  at::Tensor total = at::zeros({n}, images.options());
  if (l2 > 0) total = total + l2 * (images - 0.5).pow(2).reshape({n, -1}).mean(1);
  if (tv > 0) {
    at::Tensor dy = (images.slice(2, 1) - images.slice(2, 0, -1)).abs().reshape({n, -1}).mean(1);
    at::Tensor dx = (images.slice(3, 1) - images.slice(3, 0, -1)).abs().reshape({n, -1}).mean(1);
    total = total + tv * (dx + dy);
  }
  if (blur > 0) {
    at::Tensor blurred;
    {
      at::NoGradGuard no_grad;
      at::Tensor kernel = at::full({3, 1, 3, 3}, 1.0f / 9.0f, images.options().requires_grad(false));
      at::Tensor padded = at::replication_pad2d(images.detach(), {1, 1, 1, 1});
      const std::vector<int64_t> ones = {1, 1}, zeros = {0, 0};
      blurred = at::conv2d(padded, kernel, at::Tensor(), ones, zeros, ones, 3);
    }
    total = total + blur * (images - blurred).pow(2).reshape({n, -1}).mean(1);
  }
  return total;
}

}  // namespace cnnvis
