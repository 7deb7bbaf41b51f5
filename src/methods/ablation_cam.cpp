#include "cnnvis/methods/ablation_cam.h"

#include <algorithm>

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/methods/cam_weights.h"
#include "cnnvis/models/network.h"

namespace cnnvis {

bool ablation_reruns_only_later_layers(const Network& net, const std::string& layer) {
  return net.native() && net.can_forward_from(layer);
}

at::Tensor ablation_cam_logits(const Network& net, const std::string& layer, const at::Tensor& input,
                               const at::Tensor& activations, const at::Tensor& clean_logits, int batch_size,
                               const ProgressCallback& progress) {
  if (batch_size < 1) throw UsageError("the Ablation-CAM batch size must be at least 1");
  if (activations.dim() != 4 || clean_logits.dim() != 2 || clean_logits.size(0) != activations.size(0)) {
    throw UsageError("Ablation-CAM needs activations N x C x h x w and clean logits N x classes of the same N");
  }
  if (input.dim() != 4 || input.size(0) != activations.size(0)) {
    throw UsageError("Ablation-CAM needs the network's input N x 3 x H x W of the activations' N");
  }
  // From the layer on where the network allows it; otherwise whole passes of the input's copies with the
  // layer's output replaced by the ablated activations (as pytorch-grad-cam does, for every network).
  const bool from_layer = ablation_reruns_only_later_layers(net, layer);
  at::NoGradGuard no_grad;
  const at::Tensor a = activations.detach();
  const int64_t n = a.size(0), channels = a.size(1);
  const std::size_t total = static_cast<std::size_t>(n * channels);
  // Rows start as the clean logits: right as they are for the channels that are zero already.
  at::Tensor out = clean_logits.detach().to(at::kFloat).unsqueeze(1).repeat({1, channels, 1}).view({n * channels, -1});
  const at::Tensor live = a.flatten(2).ne(0).any(2).to(at::kCPU);  // N x C: channels with a nonzero value
  const auto live_of = live.accessor<bool, 2>();
  std::vector<int64_t> jobs;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t k = 0; k < channels; ++k) {
      if (live_of[i][k]) jobs.push_back(i * channels + k);
    }
  }
  spdlog::debug("ablationcam: {} of {} channels nonzero, each re-run {} {}", jobs.size(), total,
                from_layer ? "from after" : "with the whole network, replacing", layer);
  std::size_t done = total - jobs.size();
  for (std::size_t start = 0; start < jobs.size(); start += static_cast<std::size_t>(batch_size)) {
    const std::size_t end = std::min(jobs.size(), start + static_cast<std::size_t>(batch_size));
    const std::vector<int64_t> batch_jobs(jobs.begin() + static_cast<std::ptrdiff_t>(start),
                                          jobs.begin() + static_cast<std::ptrdiff_t>(end));
    std::vector<int64_t> images;
    for (int64_t job : batch_jobs) images.push_back(job / channels);
    const at::Tensor index = at::tensor(images, at::kLong).to(a.device());
    at::Tensor ablated = a.index_select(0, index).clone();
    for (std::size_t j = 0; j < batch_jobs.size(); ++j) ablated[static_cast<int64_t>(j)][batch_jobs[j] % channels].zero_();
    at::Tensor logits;
    if (from_layer) {
      logits = net.forward_from(layer, ablated);
    } else {
      ForwardRequest request;
      request.taps = {layer};
      request.replacements[layer] = ablated;
      logits = net.forward(input.detach().index_select(0, index.to(input.device())), request).logits;
    }
    out.index_copy_(0, at::tensor(batch_jobs, at::kLong).to(out.device()), logits.to(at::kFloat));
    done += batch_jobs.size();
    if (progress) progress(done, total, "ablationcam");
  }
  return out.view({n, channels, -1});
}

at::Tensor ablation_cam_map(const at::Tensor& ablated_logits, const at::Tensor& clean_logits,
                            const at::Tensor& activations, const std::vector<int64_t>& classes) {
  const at::Tensor ablated = target_columns(ablated_logits, classes);  // N x C
  const at::Tensor clean = target_columns(clean_logits.to(at::kFloat).unsqueeze(1), classes);  // N x 1
  const at::Tensor drop = clean - ablated;
  const at::Tensor weights = at::where(clean != 0, drop / clean, drop);
  return weighted_channel_sum(weights, activations);
}

}  // namespace cnnvis
