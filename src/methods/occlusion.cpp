// Occlusion sensitivity (see occlusion.h): options, windows, the baseline fill, scores, and the run over
// batches of windows with either engine: brute force here, the incremental one in occlusion_incremental.cpp.
#include "cnnvis/methods/occlusion.h"

#include <algorithm>
#include <cmath>

#include <ATen/ATen.h>
#include <opencv2/imgproc.hpp>
#include <spdlog/spdlog.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/methods/occlusion_incremental.h"
#include "cnnvis/methods/prediction_util.h"
#include "cnnvis/methods/tensor_image.h"
#include "cnnvis/models/eval_scope.h"
#include "cnnvis/models/network.h"

namespace cnnvis {

OcclusionFill parse_occlusion_fill(const std::string& text) {
  if (text == "mean") return OcclusionFill::mean;
  if (text == "zero") return OcclusionFill::zero;
  if (text == "gray" || text == "grey") return OcclusionFill::gray;
  if (text == "blur") return OcclusionFill::blur;
  throw UsageError("unknown occlusion fill '" + text + "' (choose mean, zero, gray or blur)");
}

const char* occlusion_fill_name(OcclusionFill fill) {
  switch (fill) {
    case OcclusionFill::mean: return "mean";
    case OcclusionFill::zero: return "zero";
    case OcclusionFill::gray: return "gray";
    case OcclusionFill::blur: return "blur";
  }
  return "?";
}

OcclusionMeasure parse_occlusion_measure(const std::string& text) {
  if (text == "logit") return OcclusionMeasure::logit;
  if (text == "prob" || text == "probability") return OcclusionMeasure::prob;
  throw UsageError("unknown occlusion measure '" + text + "' (choose logit or prob)");
}

const char* occlusion_measure_name(OcclusionMeasure measure) {
  return measure == OcclusionMeasure::logit ? "logit" : "prob";
}

namespace {

using incremental_occlusion::ChainStats;
using incremental_occlusion::clean_pass;
using incremental_occlusion::incremental_logits;
using incremental_occlusion::network_chain;
using incremental_occlusion::Regions;
using incremental_occlusion::Step;

void validate(const OcclusionOptions& options) {
  if (options.patch < 1) throw UsageError("occlusion --patch must be at least 1 pixel");
  if (options.stride < 1) throw UsageError("occlusion --stride must be at least 1 pixel");
  if (options.batch_size < 1) throw UsageError("occlusion --batch-size must be at least 1");
  if (!std::isfinite(options.blur_sigma) || options.blur_sigma < 0) {
    throw UsageError("occlusion --blur-sigma must be >= 0");
  }
}

// Window starts along one axis: 0, S, 2S, ... and a last one ending at the border.
std::vector<int> window_starts(int length, int patch, int stride) {
  if (patch >= length) return {0};
  const int count = (length - patch + stride - 1) / stride + 1;
  std::vector<int> starts;
  for (int i = 0; i < count; ++i) starts.push_back(std::min(i * stride, length - patch));
  return starts;
}

// The baseline image the windows are filled from, normalised like the input (1 x 3 x H x W).
at::Tensor baseline_tensor(const cv::Mat& input, const ModelCard& card, const OcclusionOptions& options,
                           const at::Device& device) {
  cv::Mat base;
  switch (options.fill) {
    case OcclusionFill::mean: {
      const float r = card.input_range;
      base = cv::Mat(input.size(), CV_32FC3, cv::Scalar(card.mean[0] / r, card.mean[1] / r, card.mean[2] / r));
      break;
    }
    case OcclusionFill::zero: base = cv::Mat::zeros(input.size(), CV_32FC3); break;
    case OcclusionFill::gray: base = cv::Mat(input.size(), CV_32FC3, cv::Scalar::all(0.5)); break;
    case OcclusionFill::blur: {
      const double sigma = options.blur_sigma > 0 ? options.blur_sigma : std::max(0.5, options.patch / 2.0);
      cv::GaussianBlur(input, base, cv::Size(0, 0), sigma, sigma, cv::BORDER_REFLECT);
      break;
    }
  }
  at::Tensor t = images_to_tensor({base}, card, device);
  if (options.fill == OcclusionFill::mean) t.zero_();  // exactly 0 after normalisation
  return t;
}

at::Tensor scores_of(const at::Tensor& logits, int64_t target, OcclusionMeasure measure) {
  at::Tensor l = logits.to(at::kFloat);
  if (measure == OcclusionMeasure::prob) l = at::softmax(l, 1);
  return l.select(1, target).to(at::kCPU).contiguous();
}

}  // namespace

std::vector<cv::Rect> occlusion_windows(int height, int width, int patch, int stride) {
  if (patch < 1 || stride < 1) throw UsageError("occlusion patch and stride must be at least 1 pixel");
  std::vector<cv::Rect> windows;
  const int ph = std::min(patch, height), pw = std::min(patch, width);
  for (int y : window_starts(height, patch, stride)) {
    for (int x : window_starts(width, patch, stride)) windows.emplace_back(x, y, pw, ph);
  }
  return windows;
}

std::vector<OcclusionResult> run_occlusion(LoadedModel& model, const std::vector<cv::Mat>& inputs,
                                           const OcclusionOptions& requested) {
  validate(requested);
  OcclusionOptions options = requested;
  // The incremental engine steps through native layers one by one; a TorchScript graph runs whole.
  if (!model.network().native()) options.exact_naive = true;
  const TargetSpec target = parse_target(options.target, model.card(), model.num_classes());
  if (inputs.empty()) return {};
  Network& net = model.network();
  EvalScope scope(net);
  const at::Device device(model.device());
  const ModelCard& card = model.card();
  const int height = card.input_height, width = card.input_width;
  const std::vector<cv::Rect> windows = occlusion_windows(height, width, options.patch, options.stride);
  const int rows = static_cast<int>(window_starts(height, options.patch, options.stride).size());
  const int cols = static_cast<int>(window_starts(width, options.patch, options.stride).size());
  const int64_t count = static_cast<int64_t>(windows.size());
  const std::size_t total = inputs.size() * windows.size();
  std::size_t done = 0;

  ForwardState state;
  state.relu_mode = ReluMode::standard;
  state.training = false;
  ChainStats stats;
  std::vector<Step> chain;
  if (!options.exact_naive) chain = network_chain(net);

  std::vector<OcclusionResult> results;
  for (const cv::Mat& input : inputs) {
    const at::Tensor x = images_to_tensor({input}, card, device);
    const at::Tensor baseline = baseline_tensor(input, card, options, device);
    std::vector<at::Tensor> acts;
    at::Tensor logits;
    if (options.exact_naive) {
      logits = net.forward(x).logits;
    } else {
      acts = clean_pass(chain, x, state);
      logits = acts.back();
    }
    OcclusionResult result;
    result.top = top_predictions(logits, card, 5)[0];
    const int64_t cls = target.top ? logits.argmax(1).item<int64_t>() : target.index;
    at::Tensor clean_logits = logits.to(at::kFloat).to(at::kCPU);
    result.target.index = static_cast<int>(cls);
    result.target.label = card.label(static_cast<int>(cls));
    result.target.logit = clean_logits[0][cls].item<float>();
    result.target.probability = at::softmax(clean_logits, 1)[0][cls].item<float>();
    result.score = options.measure == OcclusionMeasure::logit ? result.target.logit : result.target.probability;
    result.windows = windows;
    result.engine = options.exact_naive ? "exact_naive" : "incremental";

    std::vector<float> occluded(windows.size());
    for (int64_t start = 0; start < count; start += options.batch_size) {
      const int64_t batch = std::min<int64_t>(options.batch_size, count - start);
      at::Tensor batch_logits;
      if (options.exact_naive) {
        at::Tensor copies = x.expand({batch, x.size(1), x.size(2), x.size(3)}).clone();
        for (int64_t j = 0; j < batch; ++j) {
          const cv::Rect& r = windows[start + j];
          copies[j].narrow(1, r.y, r.height).narrow(2, r.x, r.width)
              .copy_(baseline[0].narrow(1, r.y, r.height).narrow(2, r.x, r.width));
        }
        batch_logits = net.forward(copies).logits;
      } else {
        Regions regions;
        const cv::Rect& first = windows[start];
        regions.h = first.height;
        regions.w = first.width;
        std::vector<at::Tensor> fills;
        for (int64_t j = 0; j < batch; ++j) {
          const cv::Rect& r = windows[start + j];
          regions.ys.push_back(r.y);
          regions.xs.push_back(r.x);
          fills.push_back(baseline[0].narrow(1, r.y, r.height).narrow(2, r.x, r.width));
        }
        regions.values = at::stack(fills);
        batch_logits = incremental_logits(chain, acts, std::move(regions), state, stats);
      }
      at::Tensor s = scores_of(batch_logits, cls, options.measure);
      const float* p = s.data_ptr<float>();
      for (int64_t j = 0; j < batch; ++j) occluded[start + j] = p[j];
      done += static_cast<std::size_t>(batch);
      if (options.progress) options.progress(done, total);
    }

    cv::Mat drop_sum = cv::Mat::zeros(height, width, CV_32F);
    cv::Mat occluded_sum = cv::Mat::zeros(height, width, CV_32F);
    cv::Mat covered = cv::Mat::zeros(height, width, CV_32F);
    result.window_drops = cv::Mat(rows, cols, CV_32F);
    for (std::size_t k = 0; k < windows.size(); ++k) {
      const float drop = result.score - occluded[k];
      result.window_drops.at<float>(static_cast<int>(k) / cols, static_cast<int>(k) % cols) = drop;
      drop_sum(windows[k]) += drop;
      occluded_sum(windows[k]) += occluded[k];
      covered(windows[k]) += 1.0f;
    }
    result.map = drop_sum / covered;
    result.occluded_score = occluded_sum / covered;
    results.push_back(std::move(result));
  }
  if (!options.exact_naive) {
    const std::size_t local = std::min(stats.first_full, chain.size());
    if (local < chain.size()) {
      spdlog::info("occlusion: {} of {} layers computed on regions only; full computation from '{}' on ({})", local,
                   chain.size(), chain[local].node->name(), stats.reason);
    } else {
      spdlog::info("occlusion: all {} layers computed on regions only", chain.size());
    }
  }
  return results;
}

OcclusionPlan plan_occlusion(LoadedModel& model, const OcclusionOptions& options) {
  validate(options);
  Network& net = model.network();
  if (!net.native()) {
    throw UsageError("no incremental occlusion plan for " + net.architecture() +
                     ": a TorchScript model runs as one graph, and occlusion recomputes it in full");
  }
  EvalScope scope(net);
  const ModelCard& card = model.card();
  ForwardState state;
  std::vector<Step> chain = network_chain(net);
  const at::Tensor x = at::zeros({1, 3, card.input_height, card.input_width}, at::TensorOptions().device(model.device()));
  const std::vector<at::Tensor> acts = clean_pass(chain, x, state);
  // One window away from the borders (or the first one when the image has no interior window).
  const auto windows = occlusion_windows(card.input_height, card.input_width, options.patch, options.stride);
  const cv::Rect w = windows[windows.size() / 2];
  Regions regions;
  regions.h = w.height;
  regions.w = w.width;
  regions.ys = {w.y};
  regions.xs = {w.x};
  regions.values = x.narrow(2, w.y, w.height).narrow(3, w.x, w.width).clone();
  ChainStats stats;
  incremental_logits(chain, acts, std::move(regions), state, stats);
  OcclusionPlan plan;
  plan.layers = chain.size();
  plan.incremental_layers = std::min(stats.first_full, chain.size());
  if (plan.incremental_layers < chain.size()) {
    plan.full_from = chain[plan.incremental_layers].node->name();
    plan.reason = stats.reason;
  }
  return plan;
}

}  // namespace cnnvis
