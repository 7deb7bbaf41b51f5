#include "cnnvis/methods/rise.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/methods/prediction_util.h"
#include "cnnvis/methods/tensor_image.h"
#include "cnnvis/models/eval_scope.h"
#include "cnnvis/models/network.h"

namespace cnnvis {

namespace {

constexpr int64_t kRisePass = 8;  // masked copies per forward pass (fixed, see accumulate)

// splitmix64: decorrelates the per-mask seeds derived from (seed, mask index).
std::uint64_t mix(std::uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Masks first .. first + count - 1 as count x 1 x H x W float on the CPU. Mask i comes from its own
// generator seeded with (seed, i), so it is the same whatever batch it is generated in.
at::Tensor generate_masks(int height, int width, const RiseOptions& options, int64_t first, int64_t count) {
  const int64_t s = options.cells;
  const int64_t cell_h = (height + s - 1) / s, cell_w = (width + s - 1) / s;
  const int64_t up_h = (s + 1) * cell_h, up_w = (s + 1) * cell_w;
  at::Tensor masks = at::empty({count, 1, height, width}, at::TensorOptions().dtype(at::kFloat));
  for (int64_t k = 0; k < count; ++k) {
    const auto index = static_cast<std::uint64_t>(first + k);
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(mix(options.seed ^ mix(index)));
    const at::Tensor grid = at::lt(at::rand({1, 1, s, s}, generator, at::TensorOptions().dtype(at::kFloat)),
                                   static_cast<double>(options.keep))
                                .to(at::kFloat);
    const int64_t dy = at::randint(0, cell_h, {1}, generator).item<int64_t>();
    const int64_t dx = at::randint(0, cell_w, {1}, generator).item<int64_t>();
    // Bilinear with pixel centres aligned (align_corners false), edges clamped; clipped to the grid's
    // range [0, 1] as skimage's resize does in the authors' code (the weights' rounding gives 1 + 1e-7).
    const at::Tensor up = at::upsample_bilinear2d(grid, {up_h, up_w}, /*align_corners=*/false).clamp_(0.0, 1.0);
    masks[k].copy_(up[0].narrow(1, dy, height).narrow(2, dx, width));
  }
  return masks;
}

struct Clean {
  RiseResult result;
  int64_t cls = 0;
};

// The unmasked pass: predictions and the class explained.
Clean clean_pass(Network& net, const at::Tensor& x, const TargetSpec& target, const ModelCard& card) {
  const at::Tensor logits = net.forward(x).logits.to(at::kFloat).to(at::kCPU);
  Clean clean;
  clean.result.top = top_predictions(logits, card, 5)[0];
  clean.cls = target.top ? logits.argmax(1).item<int64_t>() : target.index;
  clean.result.target.index = static_cast<int>(clean.cls);
  clean.result.target.label = card.label(static_cast<int>(clean.cls));
  clean.result.target.logit = logits[0][clean.cls].item<float>();
  clean.result.target.probability = at::softmax(logits, 1)[0][clean.cls].item<float>();
  return clean;
}

// sum += P_c(x * M_k) M_k for each mask of the batch, mask by mask in order, in float64. The network
// sees the masked copies kRisePass at a time, the last pass padded with empty masks: a linear layer's
// BLAS result for one row changes in the last bits with the number of rows in the call (measured on
// CPU: 1 and 5 rows differ from 4, 8 and 32), so a pass size that followed the batch size would make the
// map depend on it. With passes aligned to multiples of kRisePass (batches are), mask k is always row
// k mod kRisePass of an equal-sized call, and the sum does not depend on how the masks were batched.
void accumulate(Network& net, const at::Tensor& x, int64_t cls, const at::Tensor& masks, at::Tensor& sum) {
  const at::Tensor on_device = masks.to(x.device());
  const int64_t count = masks.size(0);
  for (int64_t start = 0; start < count; start += kRisePass) {
    const int64_t real = std::min<int64_t>(kRisePass, count - start);
    at::Tensor pass = on_device.narrow(0, start, real);
    if (real < kRisePass) {
      pass = at::cat({pass, at::zeros({kRisePass - real, 1, masks.size(2), masks.size(3)}, pass.options())});
    }
    const at::Tensor logits = net.forward(x * pass).logits.to(at::kFloat);
    const at::Tensor probs = at::softmax(logits, 1).select(1, cls).to(at::kDouble).to(at::kCPU).contiguous();
    const double* p = probs.data_ptr<double>();
    for (int64_t k = 0; k < real; ++k) sum.add_(on_device[start + k][0].to(at::kDouble), p[k]);
  }
}

// Masks per step: the batch size rounded up to a multiple of kRisePass (see accumulate).
int64_t step_size(const RiseOptions& options) {
  return (options.batch_size + kRisePass - 1) / kRisePass * kRisePass;
}

RiseResult finish(Clean clean, const at::Tensor& sum, int64_t count, double keep) {
  clean.result.map = tensor_to_map((sum / (static_cast<double>(count) * keep)).to(at::kFloat));
  return clean.result;
}

}  // namespace

void validate_rise_options(const RiseOptions& options) {
  if (options.masks < 1) throw UsageError("rise --masks must be at least 1");
  if (options.cells < 1) throw UsageError("rise --cells must be at least 1");
  if (!std::isfinite(options.keep) || options.keep <= 0 || options.keep > 1) {
    throw UsageError("rise --keep must be a probability in (0, 1]");
  }
  if (options.batch_size < 1) throw UsageError("rise --batch-size must be at least 1");
}

std::vector<cv::Mat> rise_masks(int height, int width, const RiseOptions& options, int first, int count) {
  validate_rise_options(options);
  if (height < 1 || width < 1 || first < 0 || count < 0) throw UsageError("rise masks: bad size or range");
  const at::Tensor masks = generate_masks(height, width, options, first, count);
  std::vector<cv::Mat> out;
  for (int k = 0; k < count; ++k) out.push_back(tensor_to_map(masks[k][0]));
  return out;
}

std::vector<RiseResult> run_rise(LoadedModel& model, const std::vector<cv::Mat>& inputs, const RiseOptions& options) {
  validate_rise_options(options);
  const TargetSpec target = parse_target(options.target, model.card(), model.num_classes());
  if (inputs.empty()) return {};
  Network& net = model.network();
  EvalScope scope(net);
  const ModelCard& card = model.card();
  const at::Device device(model.device());
  const int height = card.input_height, width = card.input_width;
  const std::size_t total = inputs.size() * static_cast<std::size_t>(options.masks);
  std::size_t done = 0;
  std::vector<RiseResult> results;
  for (const cv::Mat& input : inputs) {
    const at::Tensor x = images_to_tensor({input}, card, device);
    Clean clean = clean_pass(net, x, target, card);
    at::Tensor sum = at::zeros({height, width}, at::TensorOptions().dtype(at::kDouble).device(device));
    const int64_t step = step_size(options);
    for (int64_t start = 0; start < options.masks; start += step) {
      const int64_t count = std::min<int64_t>(step, options.masks - start);
      accumulate(net, x, clean.cls, generate_masks(height, width, options, start, count), sum);
      done += static_cast<std::size_t>(count);
      if (options.progress) options.progress(done, total);
    }
    results.push_back(finish(std::move(clean), sum, options.masks, options.keep));
  }
  return results;
}

RiseResult run_rise_with_masks(LoadedModel& model, const cv::Mat& input, const std::vector<cv::Mat>& masks,
                               const RiseOptions& requested) {
  RiseOptions options = requested;
  options.masks = std::max<int>(1, static_cast<int>(masks.size()));  // validated below, not used
  validate_rise_options(options);
  if (masks.empty()) throw UsageError("rise: no masks given");
  const TargetSpec target = parse_target(options.target, model.card(), model.num_classes());
  const ModelCard& card = model.card();
  const int height = card.input_height, width = card.input_width;
  for (const cv::Mat& m : masks) {
    if (m.type() != CV_32FC1 || m.rows != height || m.cols != width) {
      throw UsageError("rise: masks must be CV_32F of the model input size " + std::to_string(width) + "x" +
                       std::to_string(height));
    }
  }
  Network& net = model.network();
  EvalScope scope(net);
  const at::Device device(model.device());
  const at::Tensor x = images_to_tensor({input}, card, device);
  Clean clean = clean_pass(net, x, target, card);
  at::Tensor sum = at::zeros({height, width}, at::TensorOptions().dtype(at::kDouble).device(device));
  const auto n = static_cast<int64_t>(masks.size());
  const int64_t step = step_size(options);
  for (int64_t start = 0; start < n; start += step) {
    const int64_t count = std::min<int64_t>(step, n - start);
    at::Tensor batch = at::empty({count, 1, height, width}, at::TensorOptions().dtype(at::kFloat));
    for (int64_t k = 0; k < count; ++k) {
      const cv::Mat m = masks[start + k].isContinuous() ? masks[start + k] : masks[start + k].clone();
      std::memcpy(batch[k].data_ptr<float>(), m.ptr<float>(), sizeof(float) * height * width);
    }
    accumulate(net, x, clean.cls, batch, sum);
    if (options.progress) options.progress(static_cast<std::size_t>(start + count), static_cast<std::size_t>(n));
  }
  return finish(std::move(clean), sum, n, options.keep);
}

}  // namespace cnnvis
