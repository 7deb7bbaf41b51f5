// The ReLU slot and its three backward rules. Guided and deconv ReLUs are custom autograd functions so
// that one model-wide switch changes every ReLU at once; none of them works in place, because in-place
// ReLU breaks such backward rules (the forward input they need would be overwritten).
#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include "cnnvis/models/layers.h"

namespace cnnvis {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Guided backpropagation: pass the gradient only where the forward input was positive AND the incoming
// gradient is positive.
struct GuidedRelu : public torch::autograd::Function<GuidedRelu> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x) {
    at::Tensor y = x.clamp_min(0);
    ctx->save_for_backward({x});
    return y;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const at::Tensor x = ctx->get_saved_variables()[0];
    const at::Tensor& g = grad_outputs[0];
    return {g.clamp_min(0) * (x > 0).to(g.scalar_type())};
  }
};

// Zeiler & Fergus deconvnet: the backward ReLU rectifies the gradient itself and ignores the forward
// input.
struct DeconvRelu : public torch::autograd::Function<DeconvRelu> {
  static at::Tensor forward(AutogradContext*, const at::Tensor& x) { return x.clamp_min(0); }
  static variable_list backward(AutogradContext*, variable_list grad_outputs) {
    return {grad_outputs[0].clamp_min(0)};
  }
};

// Lucid's redirected ReLU (lucid/misc/redirected_relu_grad.py). The gradient is that of a loss to be
// minimised, so "grad > 0" pushes the input down. Per batch item: when the standard gradient is zero
// everywhere (the unit is dead for this image), pass the gradient except where it would push an already
// negative input further down; otherwise keep the standard gradient.
struct RedirectedRelu : public torch::autograd::Function<RedirectedRelu> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x) {
    ctx->save_for_backward({x});
    return x.clamp_min(0);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const at::Tensor x = ctx->get_saved_variables()[0];
    const at::Tensor& g = grad_outputs[0];
    const at::Tensor zero = at::zeros_like(g);
    const at::Tensor relu_grad = at::where(x < 0, zero, g);
    const at::Tensor redirected = at::where(at::logical_and(x < 0, g > 0), zero, g);
    std::vector<int64_t> shape(static_cast<std::size_t>(g.dim()), 1);
    shape[0] = g.size(0);
    const at::Tensor passes = relu_grad.reshape({g.size(0), -1}).abs().amax(1).gt(0).view(shape);
    return {at::where(passes, relu_grad, redirected)};
  }
};

}  // namespace

at::Tensor ReLU::forward(const at::Tensor& x, ForwardState& state) const {
  // Custom rules only matter when a gradient will flow; otherwise use the plain kernel.
  if (!x.requires_grad() || state.relu_mode == ReluMode::standard) return at::relu(x);
  if (state.relu_mode == ReluMode::guided) return GuidedRelu::apply(x);
  if (state.relu_mode == ReluMode::redirected) return RedirectedRelu::apply(x);
  return DeconvRelu::apply(x);
}

}  // namespace cnnvis
