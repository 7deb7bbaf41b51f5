// InceptionV1 as used by Lucid, OpenAI Microscope and the Activation Atlas ("inception5h", the Caffe/TF
// GoogLeNet export): no BatchNorm, biased convolutions, local response normalisation after the first
// convolutions, TensorFlow "SAME" padding written out as explicit (sometimes asymmetric) pads, and
// 1008 output classes. Node names follow the state-dict keys of the lucent project's PyTorch port
// (lucent/modelzoo/inceptionv1), so its published inception5h.pth loads key for key after
// scripts/export_inception5h.py; the ReLU nodes carry Lucid's layer names (conv2d0, mixed4c_3x3, ...)
// and each block's concatenation is mixed3a .. mixed5b. Input: RGB in [0, 255] minus 117.
#include <cmath>
#include <limits>
#include <string>

#include <ATen/ATen.h>

#include "cnnvis/models/architectures.h"
#include "cnnvis/models/inception5h.h"
#include "cnnvis/models/layers.h"

namespace cnnvis {
namespace {

// Constant padding (left, right, top, bottom); -inf before a max pool makes TF's SAME pooling.
class Pad2d : public Node {
 public:
  Pad2d(std::string name, int left, int right, int top, int bottom, double value)
      : Node(std::move(name), "Pad2d"), left_(left), right_(right), top_(top), bottom_(bottom), value_(value) {}
  std::string describe() const override {
    return "Pad2d(" + std::to_string(left_) + ", " + std::to_string(right_) + ", " + std::to_string(top_) + ", " +
           std::to_string(bottom_) + (std::isinf(value_) ? ", -inf)" : ")");
  }
  at::Tensor forward(const at::Tensor& x, ForwardState&) const override {
    return at::constant_pad_nd(x, {left_, right_, top_, bottom_}, value_);
  }
  ReceptiveField propagate(const ReceptiveField& in) const override {
    ReceptiveField out = in;
    out.start = in.start - left_ * in.stride;
    out.extent = in.extent + left_ + right_;
    return out;
  }

 private:
  int64_t left_, right_, top_, bottom_;
  double value_;
};

// Local response normalisation across channels, as torch.nn.functional.local_response_norm:
// b_c = a_c / (k + alpha / n * sum_{c' in window} a_c'^2)^beta, window of n channels around c
// (n/2 before, (n-1)/2 after), the sum over missing channels being zero.
class LocalResponseNorm : public Node {
 public:
  LocalResponseNorm(std::string name, int size, double alpha, double beta, double k)
      : Node(std::move(name), "LocalResponseNorm"), size_(size), alpha_(alpha), beta_(beta), k_(k) {}
  std::string describe() const override { return "LocalResponseNorm(" + std::to_string(size_) + ")"; }
  at::Tensor forward(const at::Tensor& x, ForwardState&) const override {
    at::Tensor div = (x * x).unsqueeze(1);
    div = at::constant_pad_nd(div, {0, 0, 0, 0, size_ / 2, (size_ - 1) / 2}, 0.0);
    const std::vector<int64_t> kernel = {size_, 1, 1}, stride = {1, 1, 1}, padding = {0, 0, 0};
    div = at::avg_pool3d(div, kernel, stride, padding).squeeze(1);
    return x / (div * alpha_ + k_).pow(beta_);
  }

 private:
  int64_t size_;
  double alpha_, beta_, k_;
};

void conv_relu(Sequential& seq, const std::string& relu_name, int in, int out, int kernel, int padding) {
  seq.add(std::make_unique<Conv2d>(relu_name + "_pre_relu_conv", in, out, kernel, 1, padding));
  seq.add(std::make_unique<ReLU>(relu_name));
}

std::unique_ptr<Concat> mixed(const std::string& name, int in, int c1x1, int c3x3_reduce, int c3x3, int c5x5_reduce,
                              int c5x5, int pool_reduce) {
  auto block = std::make_unique<Concat>(name, "Mixed");
  auto* b1 = block->add(std::make_unique<Sequential>(name + "_1x1_branch", "Branch"));
  conv_relu(*b1, name + "_1x1", in, c1x1, 1, 0);
  auto* b2 = block->add(std::make_unique<Sequential>(name + "_3x3_branch", "Branch"));
  conv_relu(*b2, name + "_3x3_bottleneck", in, c3x3_reduce, 1, 0);
  conv_relu(*b2, name + "_3x3", c3x3_reduce, c3x3, 3, 1);
  auto* b3 = block->add(std::make_unique<Sequential>(name + "_5x5_branch", "Branch"));
  conv_relu(*b3, name + "_5x5_bottleneck", in, c5x5_reduce, 1, 0);
  conv_relu(*b3, name + "_5x5", c5x5_reduce, c5x5, 5, 2);
  auto* b4 = block->add(std::make_unique<Sequential>(name + "_pool_branch", "Branch"));
  // SAME max pooling with stride 1 pads by one on every side with -inf, which max_pool2d's own padding does.
  b4->add(std::make_unique<MaxPool2d>(name + "_pool", 3, 1, 1));
  conv_relu(*b4, name + "_pool_reduce", in, pool_reduce, 1, 0);
  return block;
}

void same_pool(Sequential& root, const std::string& name) {
  root.add(std::make_unique<Pad2d>(name + "_pad", 0, 1, 0, 1, -std::numeric_limits<double>::infinity()));
  root.add(std::make_unique<MaxPool2d>(name, 3, 2));
}

}  // namespace

std::unique_ptr<Network> build_inception5h(int num_classes) {
  auto root = std::make_unique<Sequential>("", "InceptionV1Lucid");
  root->add(std::make_unique<Pad2d>("conv2d0_pad", 2, 3, 2, 3, 0.0));
  root->add(std::make_unique<Conv2d>("conv2d0_pre_relu_conv", 3, 64, 7, 2, 0));
  root->add(std::make_unique<ReLU>("conv2d0"));
  same_pool(*root, "maxpool0");
  root->add(std::make_unique<LocalResponseNorm>("localresponsenorm0", 9, 9.99999974738e-05, 0.5, 1.0));
  conv_relu(*root, "conv2d1", 64, 64, 1, 0);
  conv_relu(*root, "conv2d2", 64, 192, 3, 1);
  root->add(std::make_unique<LocalResponseNorm>("localresponsenorm1", 9, 9.99999974738e-05, 0.5, 1.0));
  same_pool(*root, "maxpool1");
  root->add(mixed("mixed3a", 192, 64, 96, 128, 16, 32, 32));
  root->add(mixed("mixed3b", 256, 128, 128, 192, 32, 96, 64));
  same_pool(*root, "maxpool4");
  root->add(mixed("mixed4a", 480, 192, 96, 204, 16, 48, 64));
  root->add(mixed("mixed4b", 508, 160, 112, 224, 24, 64, 64));
  root->add(mixed("mixed4c", 512, 128, 128, 256, 24, 64, 64));
  root->add(mixed("mixed4d", 512, 112, 144, 288, 32, 64, 64));
  root->add(mixed("mixed4e", 528, 256, 160, 320, 32, 128, 128));
  same_pool(*root, "maxpool10");
  root->add(mixed("mixed5a", 832, 256, 160, 320, 48, 128, 128));
  root->add(mixed("mixed5b", 832, 384, 192, 384, 48, 128, 128));
  // The original averages a 7x7 window with stride 1, which at the 224x224 input is the global average.
  root->add(std::make_unique<AdaptiveAvgPool2d>("avgpool0", 1));
  root->add(std::make_unique<Flatten>("avgpool0_reshape"));
  root->add(std::make_unique<Linear>("softmax2_pre_activation_matmul", 1024, num_classes));

  auto net = std::make_unique<Network>("inception5h", std::move(root), num_classes);
  net->add_alias("logits", "softmax2_pre_activation_matmul");
  net->add_alias("pool5", "avgpool0");
  return net;
}

}  // namespace cnnvis
