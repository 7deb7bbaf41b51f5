// Score-CAM (Wang et al. 2020), as pytorch-grad-cam computes it: each channel's activation map,
// upsampled bilinearly (corners aligned) to the input size and min-max normalised, masks the input; the
// target's logit for each masked input, softmaxed over the channels, weighs the channels:
// cam = ReLU(sum_k w_k A_k). No gradient. Library-internal (needs ATen); gradcam.h offers it as the CAM
// method `scorecam`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

#include "cnnvis/core/progress.h"

namespace cnnvis {

class Network;

struct ScoreCamOptions {
  // Masks that are zero over part of the input run on the incremental occlusion engine (native networks);
  // false: every masked input runs through the whole network (the peers' way; for comparisons).
  bool sparse_masks = true;
};

// What score_cam_logits did, for logs and tests.
struct ScoreCamStats {
  std::size_t constant_maps = 0;        // channels whose masked input was the all-zero image
  std::size_t incremental_inputs = 0;   // masked inputs on the incremental engine
  std::size_t whole_inputs = 0;         // masked inputs run through the whole network
};

// Logits (N x C x classes) of the input x (N x 3 x H x W, normalised for the network) masked by each of
// the C channels of `activations` (N x C x h x w). A channel whose upsampled map is constant normalises
// to zero, so all such channels share one masked input (all zeros), which runs once rather than once per
// channel. A mask that is zero outside a box of at most 3/4 of the input gives a masked input that
// differs from the all-zero image only in that box: on a native network each layer is then recomputed
// only where the box reaches (occlusion_incremental.h), which gives the same logits up to rounding. The
// other masked inputs run whole. An image's masked inputs run batch_size at a time, in chunks of their
// own, so memory stays bounded by batch_size inputs and an image's logits do not depend on the others.
// progress: (masked inputs done, N x C, "scorecam").
at::Tensor score_cam_logits(const Network& net, const at::Tensor& x, const at::Tensor& activations, int batch_size,
                            const ProgressCallback& progress = {}, const ScoreCamOptions& options = {},
                            ScoreCamStats* stats = nullptr);

// N x h x w: ReLU(sum_k w_k A_k) with w = softmax over k of masked_logits[i, k, classes[i]].
at::Tensor score_cam_map(const at::Tensor& masked_logits, const at::Tensor& activations,
                         const std::vector<int64_t>& classes);

}  // namespace cnnvis
