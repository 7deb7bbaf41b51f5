// FullGrad (Srinivas & Fleuret 2019), as pytorch-grad-cam's FullGrad computes it: the input-gradient
// term |x * dy/dx| plus, for every layer that adds a bias per channel (Conv2d with a bias, BatchNorm2d),
// its bias-gradient term |b * dy/dz| at that layer's output z. Each channel of each term is min-max
// normalised and resized to the input before the terms are summed. Library-internal (needs ATen);
// gradcam.h offers it as the CAM method `fullgrad` (a map at input resolution, for the whole network).
#pragma once

#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace cnnvis {

class Network;

struct BiasedLayer {
  std::string name;  // canonical node name
  at::Tensor bias;   // C: what the layer adds to output channel c (BatchNorm: beta - mean * gamma / sqrt(var + eps))
};

// Every Conv2d with a bias and every BatchNorm2d, in forward order (the modules of a TorchScript model
// as well). Throws UsageError for a network with no such layer.
std::vector<BiasedLayer> biased_layers(const Network& net);

// m: N x C x h x w -> N x C x H x W: each (image, channel) map m -= min; m /= (max + 1e-7); then
// bilinear resize (half-pixel centres, as OpenCV's resize). pytorch-grad-cam's scale_cam_image.
at::Tensor normalise_and_resize_channels(const at::Tensor& m, int64_t height, int64_t width);

// N x H x W (unnormalised sum of the normalised terms). x, x_grad: N x 3 x H x W; layer_grads[i]: the
// gradient at the output of layers[i] (N x C_i x h_i x w_i).
at::Tensor full_grad_map(const at::Tensor& x, const at::Tensor& x_grad, const std::vector<BiasedLayer>& layers,
                         const std::vector<at::Tensor>& layer_grads);

}  // namespace cnnvis
