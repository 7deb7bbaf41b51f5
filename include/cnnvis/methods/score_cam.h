// Score-CAM (Wang et al. 2020), as pytorch-grad-cam computes it: each channel's activation map,
// upsampled bilinearly (corners aligned) to the input size and min-max normalised, masks the input; the
// target's logit for each masked input, softmaxed over the channels, weighs the channels:
// cam = ReLU(sum_k w_k A_k). No gradient. Library-internal (needs ATen); gradcam.h offers it as the CAM
// method `scorecam`.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

#include "cnnvis/core/progress.h"

namespace cnnvis {

class Network;

// Logits (N x C x classes) of the input x (N x 3 x H x W, normalised for the network) masked by each of
// the C channels of `activations` (N x C x h x w). A channel whose upsampled map is constant normalises
// to zero, so all such channels share one masked input (all zeros), which runs once rather than once per
// channel. The other masked inputs run batch_size at a time, across images, so memory stays bounded by
// batch_size inputs. progress: (masked inputs done, N x C, "scorecam").
at::Tensor score_cam_logits(const Network& net, const at::Tensor& x, const at::Tensor& activations, int batch_size,
                            const ProgressCallback& progress = {});

// N x h x w: ReLU(sum_k w_k A_k) with w = softmax over k of masked_logits[i, k, classes[i]].
at::Tensor score_cam_map(const at::Tensor& masked_logits, const at::Tensor& activations,
                         const std::vector<int64_t>& classes);

}  // namespace cnnvis
