#include "cnnvis/methods/score_cam.h"

#include <algorithm>
#include <string>

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/core/runtime.h"
#include "cnnvis/methods/cam_weights.h"
#include "cnnvis/methods/occlusion_incremental.h"
#include "cnnvis/models/network.h"

namespace cnnvis {

namespace {

// The rows and columns where a mask is not zero: outside this box the masked input is all zeros.
struct MaskBox {
  int64_t y = 0, x = 0, h = 0, w = 0;
};

MaskBox support_box(const at::Tensor& nonzero) {
  const at::Tensor rows = nonzero.any(1).nonzero(), cols = nonzero.any(0).nonzero();
  MaskBox box;
  box.y = rows[0][0].item<int64_t>();
  box.h = rows[-1][0].item<int64_t>() - box.y + 1;
  box.x = cols[0][0].item<int64_t>();
  box.w = cols[-1][0].item<int64_t>() - box.x + 1;
  return box;
}

// A mask whose support leaves at least this share of the input out runs on the incremental engine;
// above it the tiles cost about what they save.
constexpr double kMaxBoxShare = 0.75;

}  // namespace

at::Tensor score_cam_logits(const Network& net, const at::Tensor& x, const at::Tensor& activations, int batch_size,
                            const ProgressCallback& progress, const ScoreCamOptions& options,
                            ScoreCamStats* stats_out) {
  if (batch_size < 1) throw UsageError("the Score-CAM batch size must be at least 1");
  if (x.dim() != 4 || activations.dim() != 4 || x.size(0) != activations.size(0)) {
    throw UsageError("Score-CAM needs inputs N x 3 x H x W and activations N x C x h x w of the same N");
  }
  at::NoGradGuard no_grad;
  const at::Tensor input = x.detach();
  const at::Tensor a = activations.detach().to(at::kFloat);
  const int64_t n = a.size(0), channels = a.size(1);
  const int64_t height = x.size(2), width = x.size(3);
  const std::vector<int64_t> size = {height, width};
  const std::size_t total = static_cast<std::size_t>(n * channels);

  at::Tensor out;  // (N * C) x classes, filled row by row
  std::size_t done = 0;
  auto store = [&](const at::Tensor& rows, const std::vector<int64_t>& jobs) {
    if (!out.defined()) out = at::zeros({n * channels, rows.size(1)}, rows.options().dtype(at::kFloat));
    out.index_copy_(0, at::tensor(jobs, at::kLong).to(out.device()), rows.to(at::kFloat));
    done += jobs.size();
    if (progress) progress(done, total, "scorecam");
  };
  // One channel at a time: all of an image's upsampled maps at once would take C x H x W floats (100 MB
  // for VGG16's 512 x 224 x 224). A first pass finds each map's range and the box of its support, so that
  // the constant maps are known (and counted) before any masked input runs; the second upsamples again
  // rather than keeping them.
  auto upsampled = [&](int64_t i, int64_t k) {
    return at::upsample_bilinear2d(a[i][k].unsqueeze(0).unsqueeze(0), size, /*align_corners=*/true)[0][0];
  };
  // The incremental engine steps through native layers one by one; a TorchScript graph runs whole.
  std::vector<incremental_occlusion::Step> chain;
  if (options.sparse_masks && net.native()) chain = incremental_occlusion::network_chain(net);
  const bool engine = !chain.empty() && chain.front().kind != incremental_occlusion::StepKind::global;
  struct Job {
    int64_t index = 0;  // i * C + k
    at::Tensor low, high;
    MaskBox box;
  };
  std::vector<int64_t> constant_jobs;
  std::vector<std::vector<Job>> whole(static_cast<std::size_t>(n)), boxed(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t k = 0; k < channels; ++k) {
      const at::Tensor up = upsampled(i, k);
      at::Tensor lo = up.min(), hi = up.max();
      if (at::equal(lo, hi)) {
        constant_jobs.push_back(i * channels + k);
        continue;
      }
      Job job{i * channels + k, std::move(lo), std::move(hi), MaskBox{0, 0, height, width}};
      if (engine) job.box = support_box(up != job.low);
      const bool small = static_cast<double>(job.box.h * job.box.w) <= kMaxBoxShare * static_cast<double>(height * width);
      (engine && small ? boxed : whole)[static_cast<std::size_t>(i)].push_back(std::move(job));
    }
  }
  if (!constant_jobs.empty()) {
    // A constant map normalises to zero everywhere: every such channel masks the input to all zeros.
    const at::Tensor zero_logits = net.forward(at::zeros_like(input[0]).unsqueeze(0)).logits;
    store(zero_logits.expand({static_cast<int64_t>(constant_jobs.size()), zero_logits.size(1)}), constant_jobs);
    spdlog::debug("scorecam: {} of {} channel maps constant, one masked input for all of them", constant_jobs.size(),
                  total);
  }
  auto masked_input = [&](const Job& job) {
    const int64_t i = job.index / channels, k = job.index % channels;
    // pytorch-grad-cam's normalisation, including its 1e-8, so that the masks are the same.
    const at::Tensor mask = (upsampled(i, k) - job.low) / (job.high - job.low + 1e-8);
    return input[i] * mask.to(input.dtype());
  };
  // Sparse masks (where a channel's map is zero over part of the grid, as ReLU maps often are): outside
  // its support box the masked input is zero, so it differs from an all-zero image only inside the box.
  // The occlusion engine then recomputes each layer only where the box reaches, from the all-zero
  // image's cached activations, until the region covers the map.
  std::vector<at::Tensor> zero_acts;
  incremental_occlusion::ChainStats stats;
  ForwardState state;
  state.relu_mode = ReluMode::standard;
  state.training = false;
  std::size_t boxed_count = 0;
  // The masked inputs of one image run in chunks of batch_size that hold no other image's, so that an
  // image's map does not depend on which images share its batch. That is what lets the chunks run on
  // oneDNN's batched convolutions (1.5x LibTorch's per-image path on VGG16) where the CLI asks for
  // batch-invariant kernels: a chunk's bits depend only on the image and batch_size.
  const bool batched_onednn = input.device().is_cpu() && per_image_onednn();
  const bool batch_invariant_kernels = !batched_onednn && !at::globalContext().userEnabledMkldnn();
  const std::size_t step = static_cast<std::size_t>(batch_size);
  for (int64_t i = 0; i < n; ++i) {
    const std::vector<Job>& full_jobs = whole[static_cast<std::size_t>(i)];
    for (std::size_t start = 0; start < full_jobs.size(); start += step) {
      const std::size_t end = std::min(full_jobs.size(), start + step);
      std::vector<at::Tensor> masked;
      std::vector<int64_t> rows;
      for (std::size_t j = start; j < end; ++j) {
        masked.push_back(masked_input(full_jobs[j]));
        rows.push_back(full_jobs[j].index);
      }
      at::Tensor logits;
      {
        const ScopedBatchInvariantKernels kernels(batch_invariant_kernels);
        logits = net.forward(at::stack(masked)).logits;
      }
      store(logits, rows);
    }
    std::vector<Job>& box_jobs = boxed[static_cast<std::size_t>(i)];
    if (box_jobs.empty()) continue;
    // Boxes of similar size share a chunk, whose tiles take the largest height and width in it; a chunk
    // closes early where that common box would pass kMaxBoxShare (a wide box beside a tall one).
    std::stable_sort(box_jobs.begin(), box_jobs.end(), [](const Job& l, const Job& r) {
      return l.box.h * l.box.w < r.box.h * r.box.w;
    });
    const ScopedBatchInvariantKernels kernels(batch_invariant_kernels);
    if (zero_acts.empty()) {
      zero_acts = incremental_occlusion::clean_pass(chain, at::zeros({1, x.size(1), height, width}, input.options()),
                                                    state);
    }
    const double max_area = kMaxBoxShare * static_cast<double>(height * width);
    for (std::size_t start = 0, end = 0; start < box_jobs.size(); start = end) {
      incremental_occlusion::Regions regions;
      for (end = start; end < box_jobs.size() && end - start < step; ++end) {
        const int64_t h = std::max(regions.h, box_jobs[end].box.h), w = std::max(regions.w, box_jobs[end].box.w);
        if (end > start && static_cast<double>(h * w) > max_area) break;
        regions.h = h;
        regions.w = w;
      }
      std::vector<at::Tensor> values;
      std::vector<int64_t> rows;
      for (std::size_t j = start; j < end; ++j) {
        const MaskBox& box = box_jobs[j].box;
        // The common box, moved back inside the input where it would reach past it, still holds this one.
        const int64_t y = std::min(box.y, height - regions.h), x0 = std::min(box.x, width - regions.w);
        regions.ys.push_back(y);
        regions.xs.push_back(x0);
        values.push_back(masked_input(box_jobs[j]).narrow(1, y, regions.h).narrow(2, x0, regions.w));
        rows.push_back(box_jobs[j].index);
      }
      regions.values = at::stack(values);
      store(incremental_occlusion::incremental_logits(chain, zero_acts, std::move(regions), state, stats), rows);
      boxed_count += end - start;
    }
  }
  if (stats_out) {
    stats_out->constant_maps = constant_jobs.size();
    stats_out->incremental_inputs = boxed_count;
    stats_out->whole_inputs = total - constant_jobs.size() - boxed_count;
  }
  if (boxed_count > 0) {
    const std::string from = stats.first_full < chain.size() ? "'" + chain[stats.first_full].node->name() + "'" : "none";
    spdlog::debug("scorecam: {} of {} masked inputs on the incremental engine (earliest full computation: {}, {})",
                  boxed_count, total, from, stats.reason);
  }
  return out.view({n, channels, -1});
}

at::Tensor score_cam_map(const at::Tensor& masked_logits, const at::Tensor& activations,
                         const std::vector<int64_t>& classes) {
  const at::Tensor scores = target_columns(masked_logits, classes);  // N x C
  return weighted_channel_sum(at::softmax(scores, 1), activations);
}

}  // namespace cnnvis
