// The ReLU slot and its three backward rules. Guided and deconv ReLUs are custom autograd functions so
// that one model-wide switch changes every ReLU at once; none of them works in place, because in-place
// ReLU breaks such backward rules (the forward input they need would be overwritten). The same rules
// serve ReLU6 (a ReLU clipped at `upper`), which TorchScript models such as MobileNet use.
#include <cmath>
#include <limits>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include "cnnvis/models/layers.h"

namespace cnnvis {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

bool clipped(double upper) { return std::isfinite(upper); }

at::Tensor clamp_forward(const at::Tensor& x, double upper) {
  return clipped(upper) ? x.clamp(0, upper) : x.clamp_min(0);
}

// Where the standard gradient of the (clipped) ReLU passes: x > 0, and x < upper when clipped.
at::Tensor passes_forward(const at::Tensor& x, double upper) {
  return clipped(upper) ? at::logical_and(x > 0, x < upper) : x > 0;
}

// Guided backpropagation: pass the gradient only where the forward input was positive (and below the
// clip) AND the incoming gradient is positive.
struct GuidedRelu : public torch::autograd::Function<GuidedRelu> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, double upper) {
    at::Tensor y = clamp_forward(x, upper);
    ctx->save_for_backward({x});
    ctx->saved_data["upper"] = upper;
    return y;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const at::Tensor x = ctx->get_saved_variables()[0];
    const at::Tensor& g = grad_outputs[0];
    const double upper = ctx->saved_data["upper"].toDouble();
    return {g.clamp_min(0) * passes_forward(x, upper).to(g.scalar_type()), at::Tensor()};
  }
};

// Zeiler & Fergus deconvnet: the backward ReLU rectifies the gradient itself and ignores the forward
// input.
struct DeconvRelu : public torch::autograd::Function<DeconvRelu> {
  static at::Tensor forward(AutogradContext*, const at::Tensor& x, double upper) { return clamp_forward(x, upper); }
  static variable_list backward(AutogradContext*, variable_list grad_outputs) {
    return {grad_outputs[0].clamp_min(0), at::Tensor()};
  }
};

// Lucid's redirected ReLU (lucid/misc/redirected_relu_grad.py). The gradient is that of a loss to be
// minimised, so "grad > 0" pushes the input down. Per batch item: when the standard gradient is zero
// everywhere (the unit is dead for this image), pass the gradient except where it would push an already
// negative input further down; otherwise keep the standard gradient. Clipped: above the clip the
// standard gradient is zero too, and the redirected one does not push a saturated input further up.
struct RedirectedRelu : public torch::autograd::Function<RedirectedRelu> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, double upper) {
    ctx->save_for_backward({x});
    ctx->saved_data["upper"] = upper;
    return clamp_forward(x, upper);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const at::Tensor x = ctx->get_saved_variables()[0];
    const at::Tensor& g = grad_outputs[0];
    const double upper = ctx->saved_data["upper"].toDouble();
    const at::Tensor zero = at::zeros_like(g);
    at::Tensor blocked = x < 0;
    at::Tensor pushes_out = at::logical_and(x < 0, g > 0);
    if (clipped(upper)) {
      blocked = at::logical_or(blocked, x > upper);
      pushes_out = at::logical_or(pushes_out, at::logical_and(x > upper, g < 0));
    }
    const at::Tensor relu_grad = at::where(blocked, zero, g);
    const at::Tensor redirected = at::where(pushes_out, zero, g);
    std::vector<int64_t> shape(static_cast<std::size_t>(g.dim()), 1);
    shape[0] = g.size(0);
    const at::Tensor passes = relu_grad.reshape({g.size(0), -1}).abs().amax(1).gt(0).view(shape);
    return {at::where(passes, relu_grad, redirected), at::Tensor()};
  }
};

}  // namespace

at::Tensor relu_with_mode(const at::Tensor& x, ReluMode mode, double upper) {
  // Custom rules only matter when a gradient will flow; otherwise use the plain kernel.
  if (!x.requires_grad() || mode == ReluMode::standard) return clipped(upper) ? at::hardtanh(x, 0, upper) : at::relu(x);
  if (mode == ReluMode::guided) return GuidedRelu::apply(x, upper);
  if (mode == ReluMode::redirected) return RedirectedRelu::apply(x, upper);
  return DeconvRelu::apply(x, upper);
}

at::Tensor ReLU::forward(const at::Tensor& x, ForwardState& state) const {
  if (state.input_overwritable && !x.requires_grad()) {
    at::Tensor y = x;
    return at::relu_(y);
  }
  return relu_with_mode(x, state.relu_mode, std::numeric_limits<double>::infinity());
}

}  // namespace cnnvis
