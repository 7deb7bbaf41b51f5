// Native networks built from a small set of layer nodes on ATen, with torchvision's parameter names.
//
// Every node has a stable dotted name ("features.29", "inception4c.branch2.0.conv") that addresses its
// output; parameterless layers (ReLU, pooling) keep their Sequential slot so that checkpoint keys match
// torchvision one to one. A forward pass returns the logits plus any named intermediates asked for.
// LibTorch C++ modules have no forward hooks, which is why the networks are written natively.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include "cnnvis/models/layer_info.h"

namespace cnnvis {

// How every ReLU in the network behaves on the backward pass.
//   standard: d/dx = grad * (x > 0)
//   guided:   grad * (x > 0) * (grad > 0)     (Springenberg et al., guided backpropagation)
//   deconv:   grad * (grad > 0), ignoring x   (Zeiler & Fergus, deconvnet)
//   redirected: standard, except for a batch item whose standard gradient at this ReLU is all zero: there
//             the gradient passes wherever it would not push an already negative input further down
//             (Lucid's redirected ReLU, used in the first steps of feature visualisation so that a dead
//             unit still moves the image). The incoming gradient is that of a loss being MINIMISED.
enum class ReluMode { standard, guided, deconv, redirected };
ReluMode parse_relu_mode(const std::string& text);
const char* relu_mode_name(ReluMode mode);

// What a forward pass should record.
struct ForwardRequest {
  std::vector<std::string> taps;       // canonical node names whose outputs to return
  std::vector<std::string> grad_taps;  // subset of taps whose gradients are wanted: the first one
                                       // reached becomes a leaf (the graph below it is cut, so backward
                                       // stops there); later ones retain their grad
  bool need_logits = true;             // false: stop as soon as every tap has been recorded
  // Tapped layers whose output is replaced by the given tensor (same shape) before the layers after them
  // read it: what perturbation methods use where forward_from cannot start (a TorchScript model, a layer
  // inside a parallel branch). The tap records the replacement.
  std::map<std::string, at::Tensor> replacements;
};

struct ForwardResult {
  at::Tensor logits;  // undefined when need_logits was false
  std::map<std::string, at::Tensor> taps;
};

struct ForwardState;

// One layer or container. Containers run their children in order and record each child's output.
class Node {
 public:
  Node(std::string name, std::string type) : name_(std::move(name)), type_(std::move(type)) {}
  virtual ~Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  const std::string& name() const { return name_; }
  const std::string& type() const { return type_; }
  virtual std::string describe() const { return type_; }  // e.g. "Conv2d(3, 64, k=3, s=1, p=1)"

  // Runs the node (children included) and records outputs asked for in state.
  virtual at::Tensor forward(const at::Tensor& x, ForwardState& state) const = 0;

  // This node's own parameters and buffers, keyed by full dotted name ("features.0.weight").
  virtual void collect_tensors(std::vector<std::pair<std::string, at::Tensor*>>& out,
                               bool include_buffers);
  // Fills parameters and buffers with their initial values (layers allocate without initialising).
  virtual void initialize() {}
  // Whether initialize() draws parameters of this node itself (the randomisation test re-draws such
  // layers); by default, whether collect_tensors lists any.
  virtual bool initializes_parameters() const;
  // Direct children (containers); leaves have none.
  virtual std::vector<Node*> children() const { return {}; }
  // Receptive field after this node given the field of its input.
  virtual ReceptiveField propagate(const ReceptiveField& in) const { return in; }
  // The kernel of a 2-D convolution (out x in x kh x kw); undefined for every other node.
  virtual at::Tensor conv_weight() const { return {}; }
  // What the layer adds to each output channel whatever its input (C): a Conv2d's bias, or a BatchNorm2d's
  // beta - mean * gamma / sqrt(var + eps) in eval mode; undefined for layers that add none (FullGrad).
  virtual at::Tensor channel_bias() const { return {}; }

  // Hooks for a root that runs its whole network itself (a TorchScript module) instead of running its
  // children one by one; the native containers keep the defaults.
  // False: the children are descriptions only (names, types), not runnable steps.
  virtual bool native() const { return true; }
  // Fills `out` with every layer for an input of height x width and returns true; false: walk the children.
  virtual bool describe_tree(int height, int width, std::vector<LayerInfo>& out) const { return false; }
  // Moves what collect_tensors does not own to `device`; returns true when it moved everything itself.
  virtual bool move_to(const at::Device& device) { return false; }

 protected:
  std::string name_;
  std::string type_;
};

// Runs child nodes in order; records each child's output under the child's name.
at::Tensor run_child(const Node& child, const at::Tensor& x, ForwardState& state);


class Network {
 public:
  Network(std::string architecture, std::unique_ptr<Node> root, int num_classes);
  ~Network();

  const std::string& architecture() const { return architecture_; }
  int num_classes() const { return num_classes_; }
  // False for a network whose layers are not native nodes (a TorchScript module): engines that run
  // layers one by one (incremental occlusion, the CAM head check) must not step through its nodes.
  bool native() const;
  // The root container (for engines that walk the layers themselves, such as LRP).
  const Node& root() const { return *root_; }

  // x: N x 3 x H x W, already normalised for the network.
  ForwardResult forward(const at::Tensor& x, const ForwardRequest& request = {}) const;

  ReluMode relu_mode() const { return relu_mode_; }
  void set_relu_mode(ReluMode mode) { relu_mode_ = mode; }
  bool training() const { return training_; }
  void set_training(bool training) { training_ = training; }

  // Parameters (and BatchNorm buffers when include_buffers) by full name, in definition order.
  std::vector<std::pair<std::string, at::Tensor*>> named_tensors(bool include_buffers = true) const;
  // Random initialisation for training (seed LibTorch first for reproducibility). Networks are built
  // with allocated but uninitialised parameters, since loading weights overwrites them anyway.
  void initialize_parameters();
  // Gradients off for all parameters (visualisation) or on (training).
  void set_parameters_trainable(bool trainable);
  void to(const at::Device& device);
  at::Device device() const;

  // All nodes (pre-order), by canonical name; the root itself is excluded.
  std::vector<const Node*> nodes() const;
  const Node* find_node(const std::string& canonical_name) const;
  // Accepts a canonical name or an alias ("conv5_3", "mixed4c", "fc7"); throws UsageError naming the
  // unknown layer and listing valid names.
  std::string resolve_layer(const std::string& name_or_alias) const;
  void add_alias(const std::string& alias, const std::string& canonical_name);
  const std::map<std::string, std::string>& aliases() const { return aliases_; }

  // The layers the forward pass runs one after another: Sequentials opened, anything else (an Inception
  // block's parallel branches, an unknown node) one opaque step. Empty for a TorchScript network.
  std::vector<const Node*> main_chain() const;
  // Whether forward_from can start after `layer` (canonical): a step of main_chain, or a Sequential whose
  // last leaf is one. Layers inside a parallel branch are not: later steps also read the other branches.
  bool can_forward_from(const std::string& layer) const;
  // Logits when `activation` replaces the output of `layer`: only the steps after it run (what
  // perturbation methods such as Ablation-CAM need: the activations up to the layer stay the same).
  // Throws UsageError when can_forward_from(layer) is false.
  at::Tensor forward_from(const std::string& layer, const at::Tensor& activation) const;

  // Name, type, output shape and receptive field of every node for an input of height x width.
  std::vector<LayerInfo> describe_layers(int height, int width) const;

 private:
  std::string architecture_;
  std::unique_ptr<Node> root_;
  int num_classes_;
  ReluMode relu_mode_ = ReluMode::standard;
  bool training_ = false;
  std::map<std::string, std::string> aliases_;
};

// Sets a network's ReLU mode for one scope and puts the previous mode back on every exit path, so an
// exception in the middle of a guided run cannot leave a shared model guided for the next caller.
class ScopedReluMode {
 public:
  ScopedReluMode(Network& net, ReluMode mode) : net_(net), previous_(net.relu_mode()) { net_.set_relu_mode(mode); }
  ~ScopedReluMode() { net_.set_relu_mode(previous_); }
  ScopedReluMode(const ScopedReluMode&) = delete;
  ScopedReluMode& operator=(const ScopedReluMode&) = delete;

 private:
  Network& net_;
  ReluMode previous_;
};

// State threaded through one forward pass.
struct ForwardState {
  const ForwardRequest* request = nullptr;
  ReluMode relu_mode = ReluMode::standard;
  bool training = false;
  bool done = false;  // every tap recorded and logits not needed: containers return at once
  std::map<std::string, at::Tensor> taps;
  std::size_t taps_remaining = 0;
  bool leaf_made = false;
  // Set by a chain for one call of a child: the child's input is an intermediate of the chain that
  // nothing else holds (not the chain's input, not a tap), and no gradient is recorded, so the child may
  // write its output over it (ReLU in place: one allocation and page-fault pass less per layer).
  bool input_overwritable = false;
  // Called by run_child with each child's output; may replace it (gradient leaf).
  at::Tensor record(const std::string& name, at::Tensor output);
  // True when `t` shares storage with a recorded tap.
  bool holds(const at::Tensor& t) const;
};

// Runs `nodes` in order on x, each output recorded (run_child), letting a node overwrite an intermediate
// that only the chain holds (see ForwardState::input_overwritable). Stops when state.done.
at::Tensor run_chain(const std::vector<const Node*>& nodes, const at::Tensor& x, ForwardState& state, bool record = true);

}  // namespace cnnvis
