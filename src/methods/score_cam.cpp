#include "cnnvis/methods/score_cam.h"

#include <algorithm>

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/core/runtime.h"
#include "cnnvis/methods/cam_weights.h"
#include "cnnvis/models/network.h"

namespace cnnvis {

at::Tensor score_cam_logits(const Network& net, const at::Tensor& x, const at::Tensor& activations, int batch_size,
                            const ProgressCallback& progress) {
  if (batch_size < 1) throw UsageError("the Score-CAM batch size must be at least 1");
  if (x.dim() != 4 || activations.dim() != 4 || x.size(0) != activations.size(0)) {
    throw UsageError("Score-CAM needs inputs N x 3 x H x W and activations N x C x h x w of the same N");
  }
  at::NoGradGuard no_grad;
  const at::Tensor input = x.detach();
  const at::Tensor a = activations.detach().to(at::kFloat);
  const int64_t n = a.size(0), channels = a.size(1);
  const std::vector<int64_t> size = {x.size(2), x.size(3)};
  const std::size_t total = static_cast<std::size_t>(n * channels);

  at::Tensor out;  // (N * C) x classes, filled row by row
  auto store = [&](const at::Tensor& rows, const std::vector<int64_t>& jobs) {
    if (!out.defined()) out = at::zeros({n * channels, rows.size(1)}, rows.options().dtype(at::kFloat));
    out.index_copy_(0, at::tensor(jobs, at::kLong).to(out.device()), rows.to(at::kFloat));
  };
  // One channel at a time: all of an image's upsampled maps at once would take C x H x W floats (100 MB
  // for VGG16's 512 x 224 x 224). A first pass finds each map's range, so that the constant maps are
  // known (and counted) before any masked input runs; the second upsamples again rather than keeping them.
  auto upsampled = [&](int64_t i, int64_t k) {
    return at::upsample_bilinear2d(a[i][k].unsqueeze(0).unsqueeze(0), size, /*align_corners=*/true)[0][0];
  };
  std::vector<at::Tensor> lows, highs;
  std::vector<int64_t> constant_jobs, varying_jobs;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t k = 0; k < channels; ++k) {
      const at::Tensor up = upsampled(i, k);
      at::Tensor lo = up.min(), hi = up.max();
      if (at::equal(lo, hi)) {
        constant_jobs.push_back(i * channels + k);
      } else {
        varying_jobs.push_back(i * channels + k);
        lows.push_back(std::move(lo));
        highs.push_back(std::move(hi));
      }
    }
  }
  std::size_t done = 0;
  if (!constant_jobs.empty()) {
    // A constant map normalises to zero everywhere: every such channel masks the input to all zeros.
    const at::Tensor zero_logits = net.forward(at::zeros_like(input[0]).unsqueeze(0)).logits;
    store(zero_logits.expand({static_cast<int64_t>(constant_jobs.size()), zero_logits.size(1)}), constant_jobs);
    spdlog::debug("scorecam: {} of {} channel maps constant, one masked input for all of them", constant_jobs.size(),
                  total);
    done = constant_jobs.size();
    if (progress) progress(done, total, "scorecam");
  }
  // The masked inputs of one image run in chunks of batch_size that hold no other image's, so that an
  // image's map does not depend on which images share its batch. That is what lets the chunks run on
  // oneDNN's batched convolutions (1.5x LibTorch's per-image path on VGG16) where the CLI asks for
  // batch-invariant kernels: a chunk's bits depend only on the image and batch_size.
  const bool batched_onednn = input.device().is_cpu() && per_image_onednn();
  const std::size_t step = static_cast<std::size_t>(batch_size);
  std::size_t start = 0;
  while (start < varying_jobs.size()) {
    const int64_t image = varying_jobs[start] / channels;
    std::size_t end = start;
    while (end < varying_jobs.size() && end - start < step && varying_jobs[end] / channels == image) ++end;
    std::vector<at::Tensor> masked;
    for (std::size_t j = start; j < end; ++j) {
      const int64_t job = varying_jobs[j], i = job / channels, k = job % channels;
      // pytorch-grad-cam's normalisation, including its 1e-8, so that the masks are the same.
      const at::Tensor mask = (upsampled(i, k) - lows[j]) / (highs[j] - lows[j] + 1e-8);
      masked.push_back(input[i] * mask.to(input.dtype()));
    }
    at::Tensor logits;
    {
      const ScopedBatchInvariantKernels kernels(!batched_onednn && !at::globalContext().userEnabledMkldnn());
      logits = net.forward(at::stack(masked)).logits;
    }
    store(logits, std::vector<int64_t>(varying_jobs.begin() + static_cast<std::ptrdiff_t>(start),
                                       varying_jobs.begin() + static_cast<std::ptrdiff_t>(end)));
    done += end - start;
    if (progress) progress(done, total, "scorecam");
    start = end;
  }
  return out.view({n, channels, -1});
}

at::Tensor score_cam_map(const at::Tensor& masked_logits, const at::Tensor& activations,
                         const std::vector<int64_t>& classes) {
  const at::Tensor scores = target_columns(masked_logits, classes);  // N x C
  return weighted_channel_sum(at::softmax(scores, 1), activations);
}

}  // namespace cnnvis
