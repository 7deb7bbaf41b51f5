// The 2-D convolution of the native networks' Conv2d layers.
//
// LibTorch's oneDNN convolutions choose their kernels by batch size, so an image's result changes in the
// last bits with the images it shares a batch with; LibTorch's native kernels compute each image on its
// own but are about half as fast. When batch-invariant kernels are asked for (the default of the CLI)
// and the per-image oneDNN path is on, every image of a batch goes through oneDNN in a call of its own:
// each call has the same shape whatever the batch, so the result is the same bits at any batch size,
// at oneDNN's speed. The backward pass (the input gradient) is computed one image at a time the same way.
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

namespace cnnvis {

// y = conv2d(x, weight, bias) with square stride and padding; bias may be undefined.
at::Tensor conv2d_layer(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, std::int64_t stride,
                        std::int64_t padding);

// Whether conv2d_layer runs this convolution image by image on oneDNN: a CPU float
// tensor, batch-invariant kernels asked for (oneDNN off globally), the per-image path on, LibTorch built
// with oneDNN, parameters that need no gradient (training keeps LibTorch's own convolution), and an input
// large enough that LibTorch runs one image on oneDNN at all (decided by the image's shape alone, never
// by the batch).
bool runs_per_image_onednn(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);

}  // namespace cnnvis
