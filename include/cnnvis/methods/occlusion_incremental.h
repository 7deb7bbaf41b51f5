// The incremental occlusion engine (see occlusion.h): an occluded copy differs from the original only
// inside the patch, so each layer of the network's main chain is recomputed only in the region the patch
// can reach (plus the halo its kernel reads from the cached unoccluded activations); once that region
// covers the whole map, or at a layer without a local rule, the rest runs in full. run_occlusion and
// plan_occlusion (occlusion.cpp) drive it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "cnnvis/models/network.h"

namespace cnnvis::incremental_occlusion {

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

// The steps of the network's main chain (Network::main_chain: Sequentials opened, anything else such as an
// Inception block's branches one opaque step), each with its local rule if it has one.
std::vector<Step> network_chain(const Network& net);

// Unoccluded activations of every step's input (acts[i]) and the logits (acts.back()); fixes the
// geometry of adaptive pooling and pads the cached inputs of window steps.
std::vector<at::Tensor> clean_pass(std::vector<Step>& chain, const at::Tensor& x, ForwardState& state);

// The changed part of a batch of occluded copies at some layer: per window a box (same size for all)
// holding new values; outside its box each copy equals the unoccluded activation.
struct Regions {
  at::Tensor values;  // B x C x h x w
  std::vector<int64_t> ys, xs;
  int64_t h = 0, w = 0;
};

struct ChainStats {
  std::size_t first_full = std::numeric_limits<std::size_t>::max();  // step index where full began
  std::string reason;
};

// Logits of the occluded copies given their level-0 regions (the filled windows); stats records the
// first step computed in full and why.
at::Tensor incremental_logits(const std::vector<Step>& chain, const std::vector<at::Tensor>& acts, Regions regions,
                              ForwardState& state, ChainStats& stats);

}  // namespace cnnvis::incremental_occlusion
