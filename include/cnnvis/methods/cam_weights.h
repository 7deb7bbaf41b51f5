// Small tensor steps shared by the CAM methods that weigh channels (library-internal, needs ATen).
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

namespace cnnvis {

// per_channel: N x C x classes; returns N x C, entry [i, k] = per_channel[i, k, classes[i]].
at::Tensor target_columns(const at::Tensor& per_channel, const std::vector<int64_t>& classes);

// N x h x w: ReLU(sum_k weights[i, k] * activations[i, k]); weights N x C, activations N x C x h x w.
at::Tensor weighted_channel_sum(const at::Tensor& weights, const at::Tensor& activations);

}  // namespace cnnvis
