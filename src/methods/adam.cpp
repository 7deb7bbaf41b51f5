#include "cnnvis/methods/adam.h"

#include <cmath>

#include <ATen/ATen.h>

namespace cnnvis {

Adam::Adam(at::Tensor& param, double learning_rate, double beta1, double beta2, double eps)
    : param_(param), lr_(learning_rate), beta1_(beta1), beta2_(beta2), eps_(eps) {
  m_ = at::zeros_like(param.detach());
  v_ = at::zeros_like(param.detach());
}

void Adam::step() {
  const at::Tensor& g = param_.grad();
  if (!g.defined()) return;
  ++t_;
  const double bc1 = 1.0 - std::pow(beta1_, static_cast<double>(t_));
  const double bc2 = 1.0 - std::pow(beta2_, static_cast<double>(t_));
  at::NoGradGuard no_grad;
  m_.mul_(beta1_).add_(g, 1.0 - beta1_);
  v_.mul_(beta2_).addcmul_(g, g, 1.0 - beta2_);
  at::Tensor denom = (v_ / bc2).sqrt_().add_(eps_);
  param_.addcdiv_(m_, denom, -lr_ / bc1);
  param_.mutable_grad() = at::Tensor();
}

}  // namespace cnnvis
