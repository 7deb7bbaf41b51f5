// The forward graph of a TorchScript module, prepared so that cnnvis can explain it.
//
// LibTorch's C++ modules run no forward hooks, so activations and gradients inside a TorchScript model
// cannot be caught the way pytorch-grad-cam catches them in Python. Instead the forward graph is inlined:
// every inlined node keeps, in its call stack, the instance path of the module it came from
// ("layer4.1.conv2"). That makes it possible to find the value each module call returns and to put a
// `cnnvis::tap` operator on it (it records the value, or cuts the graph there for a gradient), and to
// replace every ReLU / ReLU6 by `cnnvis::relu`, whose backward rule follows the network's ReluMode.
// Used only by src/models/torchscript.cpp; it includes the TorchScript IR.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/ir/ir.h>

#include "cnnvis/models/layer_info.h"

namespace cnnvis::script {

// One submodule of the TorchScript model, in the order of named_modules() (pre-order).
struct ModuleEntry {
  std::string path;  // "layer4.1.conv2"
  std::string type;  // class name: "Conv2d", "BasicBlock"
  int depth = 0;     // 0 for direct children of the model
  int calls = 0;     // how often the forward graph calls it
  int tap = -1;      // index of its tap (see PreparedGraph::tap_names); -1: no tensor to tap
  std::string no_tap_reason;   // why there is no tap, for the error message
  std::int64_t order = -1;     // position in the graph of the value it returns (later = larger)
  std::int64_t parameters = 0;  // own parameters, submodules excluded
};

struct PreparedGraph {
  std::shared_ptr<torch::jit::Graph> graph;  // inlined; ReLUs rewritten; taps inserted
  std::vector<ModuleEntry> modules;
  std::vector<std::string> tap_names;  // module path of each tap id
  int relus_rewritten = 0;
};

// The operator symbols the prepared graph uses; registered by torchscript.cpp.
torch::jit::Symbol tap_symbol();
torch::jit::Symbol relu_symbol();
// And those of the relevance graph (see relevance_graph).
torch::jit::Symbol lrp_conv_symbol();
torch::jit::Symbol lrp_linear_symbol();
torch::jit::Symbol lrp_input_symbol();
torch::jit::Symbol lrp_output_symbol();

// Inlines the module's forward graph and rewrites it (see the top of this file). Throws WeightsError
// when the module has no forward method taking one tensor.
PreparedGraph prepare_graph(const torch::jit::Module& module, const std::string& file);

// A copy of the prepared graph that returns only the outputs of the given taps (a list of tensors), with
// everything after them removed; nullptr when a tap sits inside a control-flow block (then the whole
// graph runs).
std::shared_ptr<torch::jit::Graph> graph_up_to_taps(const PreparedGraph& prepared, const std::vector<int>& taps);

// A copy of the prepared graph for layer-wise relevance propagation (torchscript.h): taps removed; after
// every convolution y = conv(x) comes cnnvis::lrp_conv(x, y, weight, bias, bn_weight, bn_bias, bn_mean,
// bn_var, bn_eps, stride, padding, dilation, groups, index), which takes the place of the eval-mode batch
// norm that alone reads y (merged in), if there is one; every linear layer becomes
// cnnvis::lrp_linear(x, weight, bias, index); the inputs of sums and average pools pass through
// cnnvis::lrp_input and their outputs through cnnvis::lrp_output. Throws UsageError naming the first
// operator on the input's path that has no rule, and its module.
std::shared_ptr<torch::jit::Graph> relevance_graph(const PreparedGraph& prepared, const std::string& file);

// Receptive field of every tap's value for an input of height x width, propagated through the graph's
// convolutions and pooling windows (kernel sizes read from the module's weights). A per-channel gate
// computed from the whole image (squeeze-and-excitation) does not widen a field: the field says which
// pixels the unit's spatial pattern comes from. known[i] is false where an operator changed the spatial
// size in a way the pass does not model (then the field is the whole image).
struct TapFields {
  std::vector<ReceptiveField> fields;
  std::vector<bool> known;
};
TapFields tap_fields(const PreparedGraph& prepared, const torch::jit::Module& module, int height, int width);

}  // namespace cnnvis::script
