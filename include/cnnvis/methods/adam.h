// Adam (Kingma & Ba) on one tensor, written on ATen so the project needs no torch::optim headers
// (library-internal). Feature visualisation optimises one parameter tensor: the image's parameters.
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

namespace cnnvis {

class Adam {
 public:
  // Lucid's optimiser is TensorFlow's AdamOptimizer: beta1 0.9, beta2 0.999, epsilon 1e-8.
  Adam(at::Tensor& param, double learning_rate, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8);
  // One step down param.grad() (ascent = minimise the negated objective); drops the gradient afterwards.
  void step();
  std::int64_t steps() const { return t_; }

 private:
  at::Tensor& param_;
  at::Tensor m_, v_;
  double lr_, beta1_, beta2_, eps_;
  std::int64_t t_ = 0;
};

}  // namespace cnnvis
