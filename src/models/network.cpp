// Network: forward passes with named taps, the main chain, layer names and aliases, receptive fields and
// parameter counts per layer. The layer nodes themselves are in layers.cpp.
#include "cnnvis/models/network.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <typeinfo>

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/core/text.h"
#include "cnnvis/models/layers.h"

namespace cnnvis {

ReluMode parse_relu_mode(const std::string& text) {
  if (text == "standard") return ReluMode::standard;
  if (text == "guided") return ReluMode::guided;
  if (text == "deconv") return ReluMode::deconv;
  if (text == "redirected") return ReluMode::redirected;
  throw UsageError("unknown ReLU mode '" + text + "' (choose standard, guided, deconv or redirected)");
}

const char* relu_mode_name(ReluMode mode) {
  switch (mode) {
    case ReluMode::standard: return "standard";
    case ReluMode::guided: return "guided";
    case ReluMode::deconv: return "deconv";
    case ReluMode::redirected: return "redirected";
  }
  return "?";
}

std::pair<double, double> ReceptiveField::span(int unit) const {
  const double centre = start + unit * stride;
  const double x0 = std::max(0.0, centre - size / 2.0);
  const double x1 = std::min(image, centre + size / 2.0);
  return {x0, x1};
}

ReceptiveField window_field(const ReceptiveField& in, int kernel, int stride, int padding, bool ceil_mode) {
  ReceptiveField out = in;
  out.size = in.size + (kernel - 1) * in.stride;
  out.start = in.start + ((kernel - 1) / 2.0 - padding) * in.stride;
  out.stride = in.stride * stride;
  const double span = in.extent + 2.0 * padding - kernel;
  double extent = (ceil_mode ? std::ceil(span / stride) : std::floor(span / stride)) + 1;
  // PyTorch drops a last ceil-mode window that would start inside the right padding.
  if (ceil_mode && (extent - 1) * stride >= in.extent + padding) extent -= 1;
  out.extent = extent;
  return out;
}

ReceptiveField adaptive_pool_field(const ReceptiveField& in, int output_size) {
  if (in.extent <= output_size) {
    // Upsampling/identity: each output unit sees (at most) one input unit.
    ReceptiveField out = in;
    out.extent = output_size;
    return out;
  }
  const int window = static_cast<int>(std::ceil(in.extent / output_size));
  const int step = static_cast<int>(std::floor(in.extent / output_size));
  ReceptiveField out = window_field(in, window, step, 0, false);
  out.extent = output_size;
  return out;
}

void Node::collect_tensors(std::vector<std::pair<std::string, at::Tensor*>>&, bool) {}

bool Node::initializes_parameters() const {
  std::vector<std::pair<std::string, at::Tensor*>> tensors;
  const_cast<Node*>(this)->collect_tensors(tensors, false);  // collect_tensors only lists pointers
  return std::any_of(tensors.begin(), tensors.end(), [](const auto& t) { return t.second->defined(); });
}

at::Tensor ForwardState::record(const std::string& name, at::Tensor output) {
  if (request == nullptr) return output;
  const auto& wanted = request->taps;
  if (std::find(wanted.begin(), wanted.end(), name) == wanted.end()) return output;
  if (auto it = request->replacements.find(name); it != request->replacements.end()) {
    if (it->second.sizes() != output.sizes()) {
      throw UsageError("the replacement for layer '" + name + "' has shape " +
                       format_shape(it->second.sizes().vec()) + ", the layer's output " +
                       format_shape(output.sizes().vec()));
    }
    output = it->second;
  }
  const auto& grads = request->grad_taps;
  if (std::find(grads.begin(), grads.end(), name) != grads.end()) {
    if (output.requires_grad()) {
      output.retain_grad();
    } else {
      // Nothing below needs a gradient: cut here so that backward stops at this layer.
      output = output.detach().requires_grad_(true);
      leaf_made = true;
    }
  }
  taps[name] = output;
  if (taps_remaining > 0 && --taps_remaining == 0 && !request->need_logits) done = true;
  return output;
}

at::Tensor run_child(const Node& child, const at::Tensor& x, ForwardState& state) {
  at::Tensor y = child.forward(x, state);
  return state.record(child.name(), std::move(y));
}

bool ForwardState::holds(const at::Tensor& t) const {
  for (const auto& [name, tap] : taps) {
    if (tap.defined() && t.is_alias_of(tap)) return true;
  }
  return false;
}

at::Tensor run_chain(const std::vector<const Node*>& nodes, const at::Tensor& x, ForwardState& state, bool record) {
  at::Tensor y = x;
  bool fresh = false;  // y is an intermediate that only this chain holds
  for (const Node* node : nodes) {
    state.input_overwritable = fresh && !at::GradMode::is_enabled();
    at::Tensor out = node->forward(y, state);
    state.input_overwritable = false;
    if (record) out = state.record(node->name(), std::move(out));
    // A view of y (flatten) or y itself (dropout in eval) is as fresh as y was; anything else is new.
    fresh = (out.is_alias_of(y) ? fresh : true) && !out.is_alias_of(x) && !state.holds(out);
    y = std::move(out);
    if (state.done) break;
  }
  return y;
}

Network::Network(std::string architecture, std::unique_ptr<Node> root, int num_classes)
    : architecture_(std::move(architecture)), root_(std::move(root)), num_classes_(num_classes) {}

Network::~Network() = default;

bool Network::native() const { return root_->native(); }

ForwardResult Network::forward(const at::Tensor& x, const ForwardRequest& request) const {
  if (x.dim() != 4) {
    throw UsageError("network input must be N x C x H x W, got " + std::to_string(x.dim()) + " dimensions");
  }
  for (const auto& name : request.taps) {
    if (find_node(name) == nullptr) throw UsageError("unknown layer '" + name + "'");
  }
  for (const auto& name : request.grad_taps) {
    if (std::find(request.taps.begin(), request.taps.end(), name) == request.taps.end()) {
      throw UsageError("gradient requested for layer '" + name + "' that is not tapped");
    }
  }
  for (const auto& [name, replacement] : request.replacements) {
    if (std::find(request.taps.begin(), request.taps.end(), name) == request.taps.end()) {
      throw UsageError("replacement given for layer '" + name + "' that is not tapped");
    }
  }
  ForwardState state;
  state.request = &request;
  state.relu_mode = relu_mode_;
  state.training = training_;
  std::vector<std::string> unique_taps(request.taps);
  std::sort(unique_taps.begin(), unique_taps.end());
  unique_taps.erase(std::unique(unique_taps.begin(), unique_taps.end()), unique_taps.end());
  state.taps_remaining = unique_taps.size();
  if (unique_taps.empty() && !request.need_logits) {
    throw UsageError("forward pass asked for nothing (no taps, no logits)");
  }
  at::Tensor out = root_->forward(x, state);
  ForwardResult result;
  if (!state.done) result.logits = out;
  result.taps = std::move(state.taps);
  return result;
}

std::vector<std::pair<std::string, at::Tensor*>> Network::named_tensors(bool include_buffers) const {
  std::vector<std::pair<std::string, at::Tensor*>> out;
  std::function<void(Node*)> walk = [&](Node* node) {
    node->collect_tensors(out, include_buffers);
    for (Node* child : node->children()) walk(child);
  };
  walk(root_.get());
  return out;
}

void Network::initialize_parameters() {
  std::function<void(Node*)> walk = [&](Node* node) {
    node->initialize();
    for (Node* child : node->children()) walk(child);
  };
  walk(root_.get());
}

void Network::set_parameters_trainable(bool trainable) {
  for (auto& [name, tensor] : named_tensors(false)) {
    if (tensor->defined()) tensor->set_requires_grad(trainable);
  }
}

void Network::to(const at::Device& device) {
  if (root_->move_to(device)) return;
  for (auto& [name, tensor] : named_tensors(true)) {
    if (!tensor->defined()) continue;
    const bool grad = tensor->requires_grad();
    *tensor = tensor->detach().to(device);
    if (grad) tensor->set_requires_grad(true);
  }
}

at::Device Network::device() const {
  for (auto& [name, tensor] : named_tensors(false)) {
    if (tensor->defined()) return tensor->device();
  }
  return at::Device(at::kCPU);
}

std::vector<const Node*> Network::nodes() const {
  std::vector<const Node*> out;
  std::function<void(const Node*)> walk = [&](const Node* node) {
    for (const Node* child : node->children()) {
      out.push_back(child);
      walk(child);
    }
  };
  walk(root_.get());
  return out;
}

namespace {
bool opened_in_chain(const Node* node) { return typeid(*node) == typeid(Sequential); }

void append_chain(const Node* node, std::vector<const Node*>& out) {
  if (!opened_in_chain(node)) {
    out.push_back(node);
    return;
  }
  for (const Node* child : node->children()) append_chain(child, out);
}

// Index in `chain` of the step whose output is the output of `layer`; npos when there is none.
std::size_t chain_position(const std::vector<const Node*>& chain, const Node* layer) {
  while (layer != nullptr && opened_in_chain(layer) && !layer->children().empty()) layer = layer->children().back();
  for (std::size_t i = 0; i < chain.size(); ++i) {
    if (chain[i] == layer) return i;
  }
  return std::string::npos;
}
}  // namespace

std::vector<const Node*> Network::main_chain() const {
  std::vector<const Node*> chain;
  if (!native()) return chain;
  append_chain(root_.get(), chain);
  return chain;
}

bool Network::can_forward_from(const std::string& layer) const {
  const Node* node = find_node(layer);
  return node != nullptr && chain_position(main_chain(), node) != std::string::npos;
}

at::Tensor Network::forward_from(const std::string& layer, const at::Tensor& activation) const {
  const Node* node = find_node(layer);
  if (node == nullptr) throw UsageError("unknown layer '" + layer + "'");
  const std::vector<const Node*> chain = main_chain();
  const std::size_t position = chain_position(chain, node);
  if (position == std::string::npos) {
    throw UsageError(native() ? "layer '" + layer + "' is inside a parallel branch: the layers after it also read " +
                                    "the other branches, so the network cannot be run on from it alone (use the block " +
                                    "that holds it)"
                              : "the network cannot be run on from layer '" + layer + "': " + architecture_ +
                                    " is a TorchScript model, run as one graph");
  }
  ForwardState state;
  state.relu_mode = relu_mode_;
  state.training = training_;
  return run_chain(std::vector<const Node*>(chain.begin() + static_cast<std::ptrdiff_t>(position + 1), chain.end()),
                   activation, state, /*record=*/false);
}

const Node* Network::find_node(const std::string& canonical_name) const {
  for (const Node* node : nodes()) {
    if (node->name() == canonical_name) return node;
  }
  return nullptr;
}

void Network::add_alias(const std::string& alias, const std::string& canonical_name) {
  if (find_node(canonical_name) == nullptr) {
    throw std::logic_error("alias " + alias + " points at missing layer " + canonical_name);
  }
  aliases_[alias] = canonical_name;
}

std::string Network::resolve_layer(const std::string& name_or_alias) const {
  if (find_node(name_or_alias) != nullptr) return name_or_alias;
  auto it = aliases_.find(name_or_alias);
  if (it != aliases_.end()) return it->second;
  std::vector<std::string> names;
  for (const auto& [alias, target] : aliases_) names.push_back(alias);
  // The names closest in spelling first: a typo or a block index one off ("layer4.3" for "layer4.2").
  std::vector<std::pair<std::size_t, std::string>> near;
  for (const Node* node : nodes()) near.emplace_back(edit_distance(name_or_alias, node->name()), node->name());
  for (const auto& [alias, target] : aliases_) near.emplace_back(edit_distance(name_or_alias, alias), alias);
  std::stable_sort(near.begin(), near.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> nearest;
  for (const auto& [distance, name] : near) {
    if (nearest.size() == 5 || distance > std::max<std::size_t>(2, name_or_alias.size() / 3)) break;
    nearest.push_back(name);
  }
  const std::string near_text = nearest.empty() ? "" : "; nearest: " + join(nearest, ", ");
  // Blocks and their direct parts ("features.29", "inception4c.branch2"); deeper names are in
  // `cnnvis layers`.
  for (const Node* node : nodes()) {
    if (std::count(node->name().begin(), node->name().end(), '.') <= 1) names.push_back(node->name());
  }
  throw UsageError("model " + architecture_ + " has no layer '" + name_or_alias + "'" + near_text + "; valid names include: " +
                   list_for_message(names, 120) + " (all of them: `cnnvis layers --model " + architecture_ + "`)");
}

namespace {

// Receptive fields of every node, walking containers the way forward runs them.
ReceptiveField walk_fields(const Node* node, const ReceptiveField& in, std::map<std::string, ReceptiveField>& out) {
  ReceptiveField field = in;
  if (auto* concat = dynamic_cast<const Concat*>(node)) {
    bool first = true;
    for (const Node* branch : concat->children()) {
      ReceptiveField f = walk_fields(branch, in, out);
      if (first || f.size > field.size) field = f;
      first = false;
    }
  } else if (dynamic_cast<const Sequential*>(node) != nullptr) {
    for (const Node* child : node->children()) field = walk_fields(child, field, out);
  } else {
    field = node->propagate(in);
  }
  out[node->name()] = field;
  return field;
}

std::int64_t own_parameter_count(Node* node) {
  std::vector<std::pair<std::string, at::Tensor*>> tensors;
  node->collect_tensors(tensors, false);
  std::int64_t count = 0;
  for (auto& [name, tensor] : tensors) {
    if (tensor->defined()) count += tensor->numel();
  }
  return count;
}

}  // namespace

std::vector<LayerInfo> Network::describe_layers(int height, int width) const {
  if (std::vector<LayerInfo> described; root_->describe_tree(height, width, described)) return described;
  ForwardRequest request;
  for (const Node* node : nodes()) request.taps.push_back(node->name());
  at::NoGradGuard no_grad;
  at::Tensor x = at::zeros({1, 3, height, width}, at::TensorOptions().device(device()));
  ForwardResult result = forward(x, request);

  ReceptiveField input;
  input.extent = std::min(height, width);
  input.image = std::min(height, width);
  std::map<std::string, ReceptiveField> fields;
  walk_fields(root_.get(), input, fields);

  std::vector<LayerInfo> out;
  std::function<void(const Node*, int)> walk = [&](const Node* node, int depth) {
    for (const Node* child : node->children()) {
      LayerInfo info;
      info.name = child->name();
      info.type = child->type();
      info.description = child->describe();
      const at::Tensor& t = result.taps.at(child->name());
      for (int64_t d = 1; d < t.dim(); ++d) info.output_shape.push_back(t.size(d));
      info.field = fields.at(child->name());
      info.depth = depth;
      info.parameters = own_parameter_count(const_cast<Node*>(child));
      out.push_back(std::move(info));
      walk(child, depth + 1);
    }
  };
  walk(root_.get(), 0);
  return out;
}

}  // namespace cnnvis
