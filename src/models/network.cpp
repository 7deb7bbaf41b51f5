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
#include "cnnvis/models/per_image_conv.h"

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

at::Tensor ForwardState::record(const std::string& name, at::Tensor output) {
  if (request == nullptr) return output;
  const auto& wanted = request->taps;
  if (std::find(wanted.begin(), wanted.end(), name) == wanted.end()) return output;
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
  at::Tensor y = activation;
  for (std::size_t i = position + 1; i < chain.size(); ++i) y = chain[i]->forward(y, state);
  return y;
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

// ---------------------------------------------------------------------------------------------
// Layers

namespace {
std::string join_name(const std::string& prefix, const std::string& leaf) {
  return prefix.empty() ? leaf : prefix + "." + leaf;
}
}  // namespace

Conv2d::Conv2d(std::string name, int in_channels_, int out_channels_, int kernel_, int stride_, int padding_,
               bool has_bias)
    : Node(std::move(name), "Conv2d"),
      in_channels(in_channels_), out_channels(out_channels_), kernel(kernel_), stride(stride_), padding(padding_) {
  // Allocated only: loading overwrites every value, and initialize_parameters() fills them for training
  // (random initialisation of VGG16's 138M parameters would cost seconds on every run).
  weight = at::empty({out_channels, in_channels, kernel, kernel});
  if (has_bias) bias = at::empty({out_channels});
}

void Conv2d::initialize() {
  // Kaiming normal (fan_out, ReLU) and zero bias, as torchvision initialises VGG.
  at::NoGradGuard no_grad;
  weight.normal_(0.0, std::sqrt(2.0 / (out_channels * kernel * kernel)));
  if (bias.defined()) bias.zero_();
}

std::string Conv2d::describe() const {
  return "Conv2d(" + std::to_string(in_channels) + ", " + std::to_string(out_channels) + ", k=" +
         std::to_string(kernel) + ", s=" + std::to_string(stride) + ", p=" + std::to_string(padding) + ")";
}

at::Tensor Conv2d::forward(const at::Tensor& x, ForwardState&) const {
  return conv2d_layer(x, weight, bias, stride, padding);
}

void Conv2d::collect_tensors(std::vector<std::pair<std::string, at::Tensor*>>& out, bool) {
  out.emplace_back(join_name(name_, "weight"), &weight);
  if (bias.defined()) out.emplace_back(join_name(name_, "bias"), &bias);
}

at::Tensor Conv2d::conv_weight() const { return weight; }

ReceptiveField Conv2d::propagate(const ReceptiveField& in) const {
  return window_field(in, kernel, stride, padding, false);
}

BatchNorm2d::BatchNorm2d(std::string name, int channels_, double eps_, double momentum_)
    : Node(std::move(name), "BatchNorm2d"), channels(channels_), eps(eps_), momentum(momentum_) {
  weight = at::empty({channels});
  bias = at::empty({channels});
  running_mean = at::empty({channels});
  running_var = at::empty({channels});
  num_batches_tracked = at::empty({}, at::kLong);
}

void BatchNorm2d::initialize() {
  at::NoGradGuard no_grad;
  weight.fill_(1.0);
  bias.zero_();
  running_mean.zero_();
  running_var.fill_(1.0);
  num_batches_tracked.zero_();
}

std::string BatchNorm2d::describe() const {
  return "BatchNorm2d(" + std::to_string(channels) + ", eps=" + std::to_string(eps).substr(0, 7) + ")";
}

at::Tensor BatchNorm2d::forward(const at::Tensor& x, ForwardState& state) const {
  if (state.training) num_batches_tracked.add_(1);
  return at::batch_norm(x, weight, bias, running_mean, running_var, state.training, momentum, eps, true);
}

void BatchNorm2d::collect_tensors(std::vector<std::pair<std::string, at::Tensor*>>& out, bool include_buffers) {
  out.emplace_back(join_name(name_, "weight"), &weight);
  out.emplace_back(join_name(name_, "bias"), &bias);
  if (include_buffers) {
    out.emplace_back(join_name(name_, "running_mean"), &running_mean);
    out.emplace_back(join_name(name_, "running_var"), &running_var);
    out.emplace_back(join_name(name_, "num_batches_tracked"), &num_batches_tracked);
  }
}

MaxPool2d::MaxPool2d(std::string name, int kernel_, int stride_, int padding_, bool ceil_mode_)
    : Node(std::move(name), "MaxPool2d"), kernel(kernel_), stride(stride_), padding(padding_), ceil_mode(ceil_mode_) {}

std::string MaxPool2d::describe() const {
  return "MaxPool2d(k=" + std::to_string(kernel) + ", s=" + std::to_string(stride) + ", p=" + std::to_string(padding) +
         (ceil_mode ? ", ceil)" : ")");
}

at::Tensor MaxPool2d::forward(const at::Tensor& x, ForwardState&) const {
  return at::max_pool2d(x, {kernel, kernel}, {stride, stride}, {padding, padding}, {1, 1}, ceil_mode);
}

ReceptiveField MaxPool2d::propagate(const ReceptiveField& in) const {
  return window_field(in, kernel, stride, padding, ceil_mode);
}

AdaptiveAvgPool2d::AdaptiveAvgPool2d(std::string name, int output_size_)
    : Node(std::move(name), "AdaptiveAvgPool2d"), output_size(output_size_) {}

std::string AdaptiveAvgPool2d::describe() const {
  return "AdaptiveAvgPool2d(" + std::to_string(output_size) + ")";
}

at::Tensor AdaptiveAvgPool2d::forward(const at::Tensor& x, ForwardState&) const {
  return at::adaptive_avg_pool2d(x, {output_size, output_size});
}

ReceptiveField AdaptiveAvgPool2d::propagate(const ReceptiveField& in) const {
  return adaptive_pool_field(in, output_size);
}

at::Tensor Flatten::forward(const at::Tensor& x, ForwardState&) const { return x.flatten(1); }

std::string Dropout::describe() const { return "Dropout(p=" + std::to_string(p).substr(0, 4) + ")"; }

at::Tensor Dropout::forward(const at::Tensor& x, ForwardState& state) const {
  return state.training ? at::dropout(x, p, true) : x;
}

Linear::Linear(std::string name, int in_features_, int out_features_)
    : Node(std::move(name), "Linear"), in_features(in_features_), out_features(out_features_) {
  weight = at::empty({out_features, in_features});
  bias = at::empty({out_features});
}

void Linear::initialize() {
  at::NoGradGuard no_grad;
  weight.normal_(0.0, 0.01);
  bias.zero_();
}

std::string Linear::describe() const {
  return "Linear(" + std::to_string(in_features) + ", " + std::to_string(out_features) + ")";
}

at::Tensor Linear::forward(const at::Tensor& x, ForwardState&) const { return at::linear(x, weight, bias); }

void Linear::collect_tensors(std::vector<std::pair<std::string, at::Tensor*>>& out, bool) {
  out.emplace_back(join_name(name_, "weight"), &weight);
  out.emplace_back(join_name(name_, "bias"), &bias);
}

ReceptiveField Linear::propagate(const ReceptiveField& in) const {
  ReceptiveField out = in;  // every output sees the whole input
  out.size = in.image;
  out.start = in.image / 2.0;
  out.stride = in.image;
  out.extent = 1;
  return out;
}

at::Tensor TransformInput::forward(const at::Tensor& x, ForwardState&) const {
  // torchvision GoogLeNet._transform_input, channel by channel in the same operation order.
  const double scale[3] = {0.229 / 0.5, 0.224 / 0.5, 0.225 / 0.5};
  const double shift[3] = {(0.485 - 0.5) / 0.5, (0.456 - 0.5) / 0.5, (0.406 - 0.5) / 0.5};
  std::vector<at::Tensor> channels;
  for (int c = 0; c < 3; ++c) channels.push_back(x.select(1, c).unsqueeze(1) * scale[c] + shift[c]);
  return at::cat(channels, 1);
}

at::Tensor Sequential::forward(const at::Tensor& x, ForwardState& state) const {
  at::Tensor y = x;
  for (const auto& child : children_) {
    y = run_child(*child, y, state);
    if (state.done) break;
  }
  return y;
}

std::vector<Node*> Sequential::children() const {
  std::vector<Node*> out;
  for (const auto& child : children_) out.push_back(child.get());
  return out;
}

ReceptiveField Sequential::propagate(const ReceptiveField& in) const {
  ReceptiveField field = in;
  for (const auto& child : children_) field = child->propagate(field);
  return field;
}

std::string Sequential::slot_name(std::size_t index) const { return join_name(name_, std::to_string(index)); }

std::string Sequential::child_name(const std::string& attribute) const { return join_name(name_, attribute); }

at::Tensor Concat::forward(const at::Tensor& x, ForwardState& state) const {
  std::vector<at::Tensor> outputs;
  for (const auto& branch : children_) {
    at::Tensor y = run_child(*branch, x, state);
    if (state.done) return y;
    outputs.push_back(y);
  }
  return at::cat(outputs, 1);
}

ReceptiveField Concat::propagate(const ReceptiveField& in) const {
  ReceptiveField best = in;
  bool first = true;
  for (const auto& branch : children_) {
    ReceptiveField f = branch->propagate(in);
    if (first || f.size > best.size) best = f;
    first = false;
  }
  return best;
}

}  // namespace cnnvis
