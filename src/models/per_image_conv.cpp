#include "cnnvis/models/per_image_conv.h"

#include <vector>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include "cnnvis/core/runtime.h"

namespace cnnvis {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// LibTorch runs a one-image convolution with a kernel of at most 3 x 3 on oneDNN only when its input has
// more than 20480 elements, and on its slowest native path otherwise (measured: 2x to 4x slower than the
// native kernels on a whole batch, e.g. 256 channels at 8 x 8). Smaller inputs therefore stay on the
// native kernels, which are batch-invariant too; the choice depends on the image's shape alone.
constexpr std::int64_t kMinInputElementsPerImage = 32768;

at::Tensor forward_per_image(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, std::int64_t stride,
                             std::int64_t padding) {
  const ScopedBatchInvariantKernels onednn(false);  // oneDNN on for this call only
  std::vector<at::Tensor> outputs;
  outputs.reserve(static_cast<std::size_t>(x.size(0)));
  for (std::int64_t i = 0; i < x.size(0); ++i) {
    outputs.push_back(at::conv2d(x.narrow(0, i, 1), weight, bias, {stride, stride}, {padding, padding}));
  }
  return outputs.size() == 1 ? outputs[0] : at::cat(outputs, 0);
}

// The bias needs no gradient and may be undefined (GoogLeNet's convolutions have none), so it travels as
// a plain argument: autograd::Function treats every at::Tensor argument as a differentiable input.
struct ConvBias {
  at::Tensor tensor;
};

// Input gradient image by image, as the forward pass: the gradient of one image never depends on the
// others either. Weight and bias gradients are not needed (runs_per_image_onednn excludes parameters
// that require them).
struct PerImageConv2d : public torch::autograd::Function<PerImageConv2d> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight, const ConvBias& bias,
                            std::int64_t stride, std::int64_t padding) {
    ctx->save_for_backward({x, weight});
    ctx->saved_data["stride"] = stride;
    ctx->saved_data["padding"] = padding;
    return forward_per_image(x, weight, bias.tensor, stride, padding);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& weight = saved[1];
    const std::int64_t stride = ctx->saved_data["stride"].toInt();
    const std::int64_t padding = ctx->saved_data["padding"].toInt();
    const at::Tensor grad = grad_outputs[0];
    const ScopedBatchInvariantKernels onednn(false);  // oneDNN on for this call only
    std::vector<at::Tensor> grads;
    grads.reserve(static_cast<std::size_t>(x.size(0)));
    for (std::int64_t i = 0; i < x.size(0); ++i) {
      grads.push_back(std::get<0>(at::convolution_backward(
          grad.narrow(0, i, 1).contiguous(), x.narrow(0, i, 1), weight, at::OptionalIntArrayRef(), {stride, stride},
          {padding, padding}, {1, 1}, false, {0, 0}, 1, {true, false, false})));
    }
    return {grads.size() == 1 ? grads[0] : at::cat(grads, 0), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

bool runs_per_image_onednn(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  if (!per_image_onednn() || at::globalContext().userEnabledMkldnn() || !at::hasMKLDNN()) return false;
  if (!x.device().is_cpu() || x.scalar_type() != at::kFloat || x.dim() != 4 || weight.dim() != 4) return false;
  if (weight.requires_grad() || (bias.defined() && bias.requires_grad())) return false;
  return x.size(1) * x.size(2) * x.size(3) >= kMinInputElementsPerImage;
}

at::Tensor conv2d_layer(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, std::int64_t stride,
                        std::int64_t padding) {
  if (runs_per_image_onednn(x, weight, bias)) return PerImageConv2d::apply(x, weight, ConvBias{bias}, stride, padding);
  return at::conv2d(x, weight, bias, {stride, stride}, {padding, padding});
}

}  // namespace cnnvis
