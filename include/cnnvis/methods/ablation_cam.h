// Ablation-CAM (Desai & Ramaswamy 2020): a channel's weight is the relative drop of the target's logit
// when that channel of the layer is set to zero, w_k = (y - y_k) / y; cam = ReLU(sum_k w_k A_k). No
// gradient. Library-internal (needs ATen); gradcam.h offers it as the CAM method `ablationcam`.
//
// The activations below the layer do not change when one of its channels is ablated, so on the main chain
// of a native network only the layers after it run again (Network::forward_from): for VGG16 at features.29 that is the last max-pool and the
// classifier, about 1% of a forward pass, where pytorch-grad-cam re-runs the whole network per channel.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "cnnvis/core/progress.h"

namespace cnnvis {

class Network;

// Whether only the layers after `layer` re-run: a native network and a layer on its main chain. Elsewhere
// (a TorchScript model, a layer inside an Inception branch) every pass runs the whole network on copies of
// the input with the layer's output replaced by the ablated activations.
bool ablation_reruns_only_later_layers(const Network& net, const std::string& layer);

// Logits (N x C x classes) with channel k of the activations (N x C x h x w, the output of `layer`) set to
// zero, from the layers after `layer` only where ablation_reruns_only_later_layers, else from `input`
// (N x 3 x H x W, the network's input). A channel that is zero everywhere already changes nothing
// when ablated: its row is the clean logits (N x classes) without a pass. The others run batch_size
// ablated copies at a time, across images. progress: (channels done, N x C, "ablationcam").
at::Tensor ablation_cam_logits(const Network& net, const std::string& layer, const at::Tensor& input,
                               const at::Tensor& activations, const at::Tensor& clean_logits, int batch_size,
                               const ProgressCallback& progress = {});

// N x h x w: ReLU(sum_k w_k A_k), w_k = (y - y_k) / y with y = clean_logits[i, classes[i]] and
// y_k = ablated_logits[i, k, classes[i]]; where y == 0 the drop y - y_k itself (the relative drop has
// no value there, and pytorch-grad-cam's would be NaN).
at::Tensor ablation_cam_map(const at::Tensor& ablated_logits, const at::Tensor& clean_logits,
                            const at::Tensor& activations, const std::vector<int64_t>& classes);

}  // namespace cnnvis
