#include "cnnvis/methods/occlusion.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <ATen/ATen.h>
#include <opencv2/imgproc.hpp>
#include <spdlog/spdlog.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/methods/prediction_util.h"
#include "cnnvis/methods/tensor_image.h"
#include "cnnvis/models/eval_scope.h"
#include "cnnvis/models/layers.h"
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

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

// ---------------------------------------------------------------------------------------------------
// The network as a chain of leaf layers, in the order Network::forward runs them.

enum class StepKind {
  elementwise,  // output at a position depends only on the input at that position
  window,       // conv / pooling: a fixed window with stride and padding
  global        // anything else: from here on, full computation
};

enum class WindowOp { conv, max_pool, avg_pool };

struct Step {
  const Node* node = nullptr;
  StepKind kind = StepKind::global;
  std::string why;  // for global steps: why no local rule
  WindowOp op = WindowOp::conv;
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0;
  double pad_value = 0;
  at::Tensor padded;  // cached input padded so that every output's window lies inside (window steps)
};

// One step of the network's main chain (Network::main_chain: Sequentials opened, anything else such as
// an Inception block's branches one opaque step), with its local rule if it has one.
Step chain_step(const Node* node) {
  Step step;
  step.node = node;
  if (dynamic_cast<const ReLU*>(node) || dynamic_cast<const BatchNorm2d*>(node) ||
      dynamic_cast<const Dropout*>(node) || dynamic_cast<const TransformInput*>(node)) {
    // Eval mode: BatchNorm is a per-channel affine map and Dropout the identity.
    step.kind = StepKind::elementwise;
  } else if (auto* conv = dynamic_cast<const Conv2d*>(node)) {
    step.kind = StepKind::window;
    step.op = WindowOp::conv;
    step.kh = step.kw = conv->kernel;
    step.sh = step.sw = conv->stride;
    step.ph = step.pw = conv->padding;
  } else if (auto* pool = dynamic_cast<const MaxPool2d*>(node)) {
    step.kind = StepKind::window;
    step.op = WindowOp::max_pool;
    step.kh = step.kw = pool->kernel;
    step.sh = step.sw = pool->stride;
    step.ph = step.pw = pool->padding;
    step.pad_value = -std::numeric_limits<double>::infinity();
  } else if (dynamic_cast<const AdaptiveAvgPool2d*>(node)) {
    step.kind = StepKind::window;  // refined (or made global) once the input size is known
    step.op = WindowOp::avg_pool;
  } else {
    step.kind = StepKind::global;
    step.why = dynamic_cast<const Concat*>(node) ? "no local rule for parallel branches"
                                                 : "global layer (" + node->type() + ")";
  }
  return step;
}

std::vector<Step> network_chain(const Network& net) {
  std::vector<Step> chain;
  for (const Node* node : net.main_chain()) chain.push_back(chain_step(node));
  return chain;
}

// Unoccluded activations of every step's input (acts[i]) and the logits (acts.back()); fixes the
// geometry of adaptive pooling and pads the cached inputs of window steps.
std::vector<at::Tensor> clean_pass(std::vector<Step>& chain, const at::Tensor& x, ForwardState& state) {
  std::vector<at::Tensor> acts{x};
  for (Step& step : chain) {
    const at::Tensor& in = acts.back();
    at::Tensor out = step.node->forward(in, state);
    if (step.kind != StepKind::global && (in.dim() != 4 || out.dim() != 4)) {
      step.kind = StepKind::global;
      step.why = "non-spatial input";
    }
    if (step.kind == StepKind::window && step.op == WindowOp::avg_pool) {
      const int64_t h = in.size(2), w = in.size(3), oh = out.size(2), ow = out.size(3);
      if (oh == 1 && ow == 1) {
        step.kind = StepKind::global;
        step.why = "global layer (" + step.node->type() + ")";
      } else if (h % oh == 0 && w % ow == 0) {
        // Adaptive pooling to a divisor of the input size is a plain average pool.
        step.kh = step.sh = h / oh;
        step.kw = step.sw = w / ow;
      } else {
        step.kind = StepKind::global;
        step.why = "adaptive pooling with uneven windows";
      }
    }
    if (step.kind == StepKind::window) {
      const int64_t h = in.size(2), w = in.size(3), oh = out.size(2), ow = out.size(3);
      // Padded far enough that the last output's window fits (ceil-mode pools reach past the padding;
      // PyTorch ignores those positions, as -inf does for max pooling).
      const int64_t need_h = (oh - 1) * step.sh + step.kh, need_w = (ow - 1) * step.sw + step.kw;
      const int64_t bottom = std::max<int64_t>(0, need_h - h - step.ph);
      const int64_t right = std::max<int64_t>(0, need_w - w - step.pw);
      step.padded = at::constant_pad_nd(in, {step.pw, right, step.ph, bottom}, step.pad_value);
    }
    acts.push_back(out);
  }
  return acts;
}

at::Tensor apply_window(const Step& step, const at::Tensor& tiles) {
  switch (step.op) {
    case WindowOp::conv: {
      auto* conv = static_cast<const Conv2d*>(step.node);
      const std::vector<int64_t> stride{step.sh, step.sw}, padding{0, 0};
      return at::conv2d(tiles, conv->weight, conv->bias, stride, padding);
    }
    case WindowOp::max_pool:
      return at::max_pool2d(tiles, {step.kh, step.kw}, {step.sh, step.sw}, {0, 0}, {1, 1}, false);
    case WindowOp::avg_pool:
      return at::avg_pool2d(tiles, {step.kh, step.kw}, {step.sh, step.sw}, {0, 0}, false, true);
  }
  return tiles;
}

// The changed part of a batch of occluded copies at some layer: per window a box (same size for all)
// holding new values; outside its box each copy equals the unoccluded activation.
struct Regions {
  at::Tensor values;  // B x C x h x w
  std::vector<int64_t> ys, xs;
  int64_t h = 0, w = 0;
};

// Copies of the unoccluded activation with each window's box written in.
at::Tensor materialize(const at::Tensor& clean, const Regions& regions) {
  const int64_t batch = regions.values.size(0);
  at::Tensor full = clean.expand({batch, clean.size(1), clean.size(2), clean.size(3)}).clone();
  for (int64_t j = 0; j < batch; ++j) {
    full[j].narrow(1, regions.ys[j], regions.h).narrow(2, regions.xs[j], regions.w).copy_(regions.values[j]);
  }
  return full;
}

// Output boxes along one axis for input boxes [start, start + size): every output whose window reads a
// changed input, grown to a common size and kept inside the map. Returns false when they cover it all.
bool output_boxes(const std::vector<int64_t>& starts, int64_t size, int64_t kernel, int64_t stride, int64_t pad,
                  int64_t out_len, std::vector<int64_t>& out_starts, int64_t& out_size) {
  std::vector<int64_t> lo(starts.size());
  out_size = 0;
  for (std::size_t j = 0; j < starts.size(); ++j) {
    const int64_t first = std::max<int64_t>(0, ceil_div(starts[j] + pad - kernel + 1, stride));
    const int64_t last = std::min<int64_t>(out_len - 1, floor_div(starts[j] + size - 1 + pad, stride));
    lo[j] = first;
    out_size = std::max(out_size, last - first + 1);
  }
  out_size = std::max<int64_t>(out_size, 1);
  if (out_size >= out_len) {
    out_size = out_len;
    out_starts.assign(starts.size(), 0);
    return false;
  }
  out_starts.resize(starts.size());
  for (std::size_t j = 0; j < starts.size(); ++j) {
    out_starts[j] = std::max<int64_t>(0, std::min(lo[j], out_len - out_size));
  }
  return true;
}

// One window step on regions. Returns false (regions untouched) when the output boxes cover the map.
bool window_step(const Step& step, const at::Tensor& clean_out, Regions& regions) {
  std::vector<int64_t> oys, oxs;
  int64_t oh = 0, ow = 0;
  const bool rows_local = output_boxes(regions.ys, regions.h, step.kh, step.sh, step.ph, clean_out.size(2), oys, oh);
  const bool cols_local = output_boxes(regions.xs, regions.w, step.kw, step.sw, step.pw, clean_out.size(3), oxs, ow);
  if (!rows_local && !cols_local) return false;
  const int64_t batch = regions.values.size(0);
  const int64_t th = (oh - 1) * step.sh + step.kh, tw = (ow - 1) * step.sw + step.kw;
  const at::Tensor& padded = step.padded;
  at::Tensor tiles = at::empty({batch, padded.size(1), th, tw}, padded.options());
  for (int64_t j = 0; j < batch; ++j) {
    const int64_t ty = oys[j] * step.sh, tx = oxs[j] * step.sw;  // tile origin in padded coordinates
    at::Tensor tile = tiles[j];
    tile.copy_(padded[0].narrow(1, ty, th).narrow(2, tx, tw));
    // The changed box, in padded coordinates, clipped to the tile (inputs no output reads are skipped).
    const int64_t by = regions.ys[j] + step.ph, bx = regions.xs[j] + step.pw;
    const int64_t y0 = std::max(by, ty), y1 = std::min(by + regions.h, ty + th);
    const int64_t x0 = std::max(bx, tx), x1 = std::min(bx + regions.w, tx + tw);
    if (y0 >= y1 || x0 >= x1) continue;
    tile.narrow(1, y0 - ty, y1 - y0)
        .narrow(2, x0 - tx, x1 - x0)
        .copy_(regions.values[j].narrow(1, y0 - by, y1 - y0).narrow(2, x0 - bx, x1 - x0));
  }
  regions.values = apply_window(step, tiles);
  regions.ys = std::move(oys);
  regions.xs = std::move(oxs);
  regions.h = oh;
  regions.w = ow;
  return true;
}

struct ChainStats {
  std::size_t first_full = std::numeric_limits<std::size_t>::max();  // step index where full began
  std::string reason;
};

// Logits of the occluded copies given their level-0 regions (the filled windows).
at::Tensor incremental_logits(const std::vector<Step>& chain, const std::vector<at::Tensor>& acts, Regions regions,
                              ForwardState& state, ChainStats& stats) {
  at::Tensor full;
  for (std::size_t i = 0; i < chain.size(); ++i) {
    const Step& step = chain[i];
    if (full.defined()) {
      full = step.node->forward(full, state);
      continue;
    }
    if (step.kind == StepKind::elementwise) {
      regions.values = step.node->forward(regions.values, state);
      continue;
    }
    if (step.kind == StepKind::window && window_step(step, acts[i + 1], regions)) continue;
    if (i < stats.first_full) {
      stats.first_full = i;
      stats.reason = step.kind == StepKind::window ? "region covers the map" : step.why;
    }
    full = step.node->forward(materialize(acts[i], regions), state);
  }
  if (!full.defined()) full = materialize(acts.back(), regions);  // a fully convolutional network
  return full;
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
