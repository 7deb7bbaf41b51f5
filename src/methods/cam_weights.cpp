#include "cnnvis/methods/cam_weights.h"

#include <ATen/ATen.h>

#include "cnnvis/core/errors.h"

namespace cnnvis {

at::Tensor target_columns(const at::Tensor& per_channel, const std::vector<int64_t>& classes) {
  if (per_channel.dim() != 3 || per_channel.size(0) != static_cast<int64_t>(classes.size())) {
    throw UsageError("per-channel scores must be N x C x classes with one class per image");
  }
  const int64_t n = per_channel.size(0), channels = per_channel.size(1);
  const at::Tensor index =
      at::tensor(classes, at::kLong).to(per_channel.device()).view({n, 1, 1}).expand({n, channels, 1});
  return per_channel.gather(2, index).squeeze(2);
}

at::Tensor weighted_channel_sum(const at::Tensor& weights, const at::Tensor& activations) {
  const at::Tensor w = weights.to(activations.device(), activations.scalar_type());
  return at::relu((w.unsqueeze(2).unsqueeze(3) * activations).sum(1));
}

}  // namespace cnnvis
