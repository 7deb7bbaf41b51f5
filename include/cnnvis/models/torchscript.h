// TorchScript classifiers the user exported (torch.jit.trace or torch.jit.script), run as a Network.
//
// The module's forward graph is inlined and rewritten (see script_graph.h): each submodule's output is a
// tap addressed by its module path ("layer4", "features.18"), and its ReLUs follow the network's ReluMode,
// so every method that works on the built-in networks works here. The graph runs in LibTorch's
// interpreter; the module's parameters stay where torch.jit.load put them.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace cnnvis {

class Network;

struct TorchScriptNetwork {
  std::unique_ptr<Network> network;
  int num_classes = 0;
  std::string default_layer;  // the last module with a spatial (H x W > 1) output; empty when none
};

// Loads `path` on the CPU and checks it with one forward of a 1 x 3 x height x width zero batch.
// Throws WeightsError naming the file when it is not TorchScript, its forward does not take one tensor,
// or its output is not an [N, classes] tensor.
TorchScriptNetwork load_torchscript(const std::string& path, int height, int width);

// Layer-wise relevance propagation through a TorchScript model (methods/lrp.cpp supplies the rules).
// The native networks hand relevance from layer to layer by walking their nodes; a TorchScript model
// runs as one graph, so its graph is rewritten instead (script_graph.h, relevance_graph): each
// convolution (with the batch norm after it merged in, as zennit's canonizer does) and each linear layer
// becomes an operator whose backward pass returns the relevance at its input by the caller's rule; sums
// (residual connections) split the relevance in proportion to their terms and average pools use the
// epsilon rule, both stabilised by `epsilon`; ReLUs pass the relevance on; max pooling, concatenation,
// flattening and dropout hand it on as their gradient does. A backward pass of the target's logit
// through that graph then carries relevance instead of gradient.

// A convolution or linear layer of the graph, in the form the rules need.
struct AffineLayer {
  at::Tensor weight, bias;  // batch norm merged; bias may be undefined
  bool conv = false;
  std::vector<std::int64_t> stride{1, 1}, padding{0, 0}, dilation{1, 1};
  std::int64_t groups = 1;
  int index = 0;  // position among the graph's convolutions (0: the first one) or linear layers
};

struct RelevanceRules {
  // Relevance at the input x of `layer` from the relevance r at its output.
  std::function<at::Tensor(const AffineLayer& layer, const at::Tensor& x, const at::Tensor& r)> affine;
  double epsilon = 1e-6;  // stabiliser of the sum and average-pool rules
};

// Relevance at the input (the shape of x) of logits[i, classes[i]] for each image i of a TorchScript
// network. Throws UsageError for a native network and for a model with an operator that has no rule
// (named with the module it sits in).
at::Tensor script_relevance(const Network& net, const at::Tensor& x, const at::Tensor& classes,
                            const RelevanceRules& rules);
// Builds the network's relevance graph (kept for later calls), so that an operator without a rule is
// reported before any input is read: throws what script_relevance would.
void check_script_relevance(const Network& net);

}  // namespace cnnvis
