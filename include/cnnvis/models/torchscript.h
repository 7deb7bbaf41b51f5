// TorchScript classifiers the user exported (torch.jit.trace or torch.jit.script), run as a Network.
//
// The module's forward graph is inlined and rewritten (see script_graph.h): each submodule's output is a
// tap addressed by its module path ("layer4", "features.18"), and its ReLUs follow the network's ReluMode,
// so every method that works on the built-in networks works here. The graph runs in LibTorch's
// interpreter; the module's parameters stay where torch.jit.load put them.
#pragma once

#include <memory>
#include <string>

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

}  // namespace cnnvis
