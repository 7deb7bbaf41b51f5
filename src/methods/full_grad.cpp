#include "cnnvis/methods/full_grad.h"

#include <ATen/ATen.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/models/network.h"

namespace cnnvis {

std::vector<BiasedLayer> biased_layers(const Network& net) {
  std::vector<BiasedLayer> out;
  for (const Node* node : net.nodes()) {
    at::Tensor bias = node->channel_bias();
    if (bias.defined()) out.push_back({node->name(), std::move(bias)});
  }
  if (out.empty()) {
    throw UsageError("fullgrad needs layers with a bias (Conv2d or BatchNorm2d); " + net.architecture() + " has none");
  }
  return out;
}

at::Tensor normalise_and_resize_channels(const at::Tensor& m, int64_t height, int64_t width) {
  const at::Tensor flat = m.flatten(2);
  at::Tensor shifted = m - std::get<0>(flat.min(2)).unsqueeze(2).unsqueeze(3);
  shifted = shifted / (std::get<0>(shifted.flatten(2).max(2)).unsqueeze(2).unsqueeze(3) + 1e-7);
  if (shifted.size(2) == height && shifted.size(3) == width) return shifted;
  return at::upsample_bilinear2d(shifted, {height, width}, /*align_corners=*/false);
}

at::Tensor full_grad_map(const at::Tensor& x, const at::Tensor& x_grad, const std::vector<BiasedLayer>& layers,
                         const std::vector<at::Tensor>& layer_grads) {
  if (layers.size() != layer_grads.size()) throw UsageError("fullgrad: one gradient per biased layer expected");
  const int64_t height = x.size(2), width = x.size(3);
  at::NoGradGuard no_grad;
  at::Tensor sum = normalise_and_resize_channels((x.detach() * x_grad).abs().to(at::kFloat), height, width).sum(1);
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const at::Tensor& g = layer_grads[i];
    const at::Tensor bias = layers[i].bias.to(g.device(), g.scalar_type()).view({1, -1, 1, 1});
    sum = sum + normalise_and_resize_channels((bias * g).abs().to(at::kFloat), height, width).sum(1);
  }
  return sum;
}

}  // namespace cnnvis
