// The incremental occlusion engine: see cnnvis/methods/occlusion_incremental.h.
#include "cnnvis/methods/occlusion_incremental.h"

#include <algorithm>

#include <ATen/ATen.h>

#include "cnnvis/models/layers.h"

namespace cnnvis::incremental_occlusion {

namespace {

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

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

}  // namespace

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

}  // namespace cnnvis::incremental_occlusion
