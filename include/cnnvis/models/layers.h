// The layer nodes the native networks are made of. Members are named like torchvision's attributes so
// that checkpoint keys match ("<name>.weight", "<name>.running_mean").
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cnnvis/models/network.h"

namespace cnnvis {

class Conv2d : public Node {
 public:
  Conv2d(std::string name, int in_channels, int out_channels, int kernel, int stride = 1, int padding = 0,
         bool bias = true);
  void initialize() override;
  std::string describe() const override;
  at::Tensor forward(const at::Tensor& x, ForwardState& state) const override;
  void collect_tensors(std::vector<std::pair<std::string, at::Tensor*>>& out, bool include_buffers) override;
  ReceptiveField propagate(const ReceptiveField& in) const override;
  at::Tensor conv_weight() const override;
  at::Tensor channel_bias() const override;
  int in_channels, out_channels, kernel, stride, padding;
  at::Tensor weight, bias;  // bias undefined when absent
};

class BatchNorm2d : public Node {
 public:
  BatchNorm2d(std::string name, int channels, double eps = 1e-5, double momentum = 0.1);
  void initialize() override;
  std::string describe() const override;
  at::Tensor forward(const at::Tensor& x, ForwardState& state) const override;
  void collect_tensors(std::vector<std::pair<std::string, at::Tensor*>>& out, bool include_buffers) override;
  at::Tensor channel_bias() const override;
  int channels;
  double eps, momentum;
  at::Tensor weight, bias, running_mean, running_var, num_batches_tracked;
};

// The ReLU slot. Its backward rule follows the network-wide ReluMode (see relu_modes.cpp).
class ReLU : public Node {
 public:
  explicit ReLU(std::string name) : Node(std::move(name), "ReLU") {}
  at::Tensor forward(const at::Tensor& x, ForwardState& state) const override;
};

// A ReLU (upper = infinity) or a ReLU clipped at `upper` (ReLU6 is hardtanh(x, 0, 6)) whose backward pass
// follows `mode`. The native ReLU slot and the ReLUs of TorchScript models both run through it.
at::Tensor relu_with_mode(const at::Tensor& x, ReluMode mode, double upper);

class MaxPool2d : public Node {
 public:
  MaxPool2d(std::string name, int kernel, int stride, int padding = 0, bool ceil_mode = false);
  std::string describe() const override;
  at::Tensor forward(const at::Tensor& x, ForwardState& state) const override;
  ReceptiveField propagate(const ReceptiveField& in) const override;
  int kernel, stride, padding;
  bool ceil_mode;
};

// Adaptive average pooling to a fixed output size (VGG's 7x7, GoogLeNet's 1x1).
class AdaptiveAvgPool2d : public Node {
 public:
  AdaptiveAvgPool2d(std::string name, int output_size);
  std::string describe() const override;
  at::Tensor forward(const at::Tensor& x, ForwardState& state) const override;
  ReceptiveField propagate(const ReceptiveField& in) const override;
  int output_size;
};

class Flatten : public Node {
 public:
  explicit Flatten(std::string name) : Node(std::move(name), "Flatten") {}
  at::Tensor forward(const at::Tensor& x, ForwardState& state) const override;
};

class Dropout : public Node {
 public:
  Dropout(std::string name, double p) : Node(std::move(name), "Dropout"), p(p) {}
  std::string describe() const override;
  at::Tensor forward(const at::Tensor& x, ForwardState& state) const override;
  double p;
};

class Linear : public Node {
 public:
  Linear(std::string name, int in_features, int out_features);
  void initialize() override;
  std::string describe() const override;
  at::Tensor forward(const at::Tensor& x, ForwardState& state) const override;
  void collect_tensors(std::vector<std::pair<std::string, at::Tensor*>>& out, bool include_buffers) override;
  ReceptiveField propagate(const ReceptiveField& in) const override;
  int in_features, out_features;
  at::Tensor weight, bias;
};

// torchvision GoogLeNet's transform_input: re-normalises ImageNet-normalised input to the (x-0.5)/0.5
// convention its pretrained weights expect.
class TransformInput : public Node {
 public:
  explicit TransformInput(std::string name) : Node(std::move(name), "TransformInput") {}
  at::Tensor forward(const at::Tensor& x, ForwardState& state) const override;
};

// Children run one after another. Children are named "<name>.<slot>" or by attribute name.
class Sequential : public Node {
 public:
  explicit Sequential(std::string name, std::string type = "Sequential") : Node(std::move(name), std::move(type)) {}
  // Appends a child; returns it for further set-up.
  template <typename T>
  T* add(std::unique_ptr<T> child) {
    T* raw = child.get();
    children_.push_back(std::move(child));
    return raw;
  }
  at::Tensor forward(const at::Tensor& x, ForwardState& state) const override;
  std::vector<Node*> children() const override;
  ReceptiveField propagate(const ReceptiveField& in) const override;
  // Name for the next numbered slot: "<name>.<index>" (or "<index>" at the root).
  std::string slot_name(std::size_t index) const;
  std::string child_name(const std::string& attribute) const;

 protected:
  std::vector<std::unique_ptr<Node>> children_;
};

// Runs every branch on the same input and concatenates along channels (Inception blocks).
class Concat : public Sequential {
 public:
  explicit Concat(std::string name, std::string type = "Inception") : Sequential(std::move(name), std::move(type)) {}
  at::Tensor forward(const at::Tensor& x, ForwardState& state) const override;
  ReceptiveField propagate(const ReceptiveField& in) const override;
};

}  // namespace cnnvis
