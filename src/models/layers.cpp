// The layer nodes of the native networks (cnnvis/models/layers.h): their parameters, forward passes and
// receptive fields. The Network that holds them is in network.cpp.
#include "cnnvis/models/layers.h"

#include <cmath>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "cnnvis/models/per_image_conv.h"

namespace cnnvis {

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
at::Tensor Conv2d::channel_bias() const { return bias.defined() ? bias.detach() : at::Tensor(); }

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

at::Tensor BatchNorm2d::channel_bias() const {
  // In eval mode y = gamma (x - mean) / sqrt(var + eps) + beta: the bias is what it adds to a zero input.
  const at::Tensor scale = weight.detach() / at::sqrt(running_var.detach() + eps);
  return bias.detach() - running_mean.detach() * scale;
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
  std::vector<const Node*> nodes;
  nodes.reserve(children_.size());
  for (const auto& child : children_) nodes.push_back(child.get());
  return run_chain(nodes, x, state);
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
