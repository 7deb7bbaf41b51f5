// Eigen-CAM (Muhammad & Yeasin 2020): the activations' first principal component as a map. Library-
// internal (needs ATen); gradcam.h offers it as the CAM methods `eigencam` (of the activations, no
// gradient, the same map for every class) and `eigengradcam` (of activations x gradients, per class).
#pragma once

#include <ATen/core/Tensor.h>

namespace cnnvis {

// m: N x C x h x w. Per image, the h*w positions' C-vectors are centred (their mean subtracted) and
// projected onto the first right-singular vector of that (h*w) x C matrix, as pytorch-grad-cam's
// get_2d_projection does. A principal direction has no sign of its own, so it is chosen to make the
// projection correlate positively with the channel mean of m: the map then shows where m is strong,
// not where it is weak. Returns N x h x w (unrectified, float); all zeros when m is constant per image.
at::Tensor first_component_projection(const at::Tensor& m);

}  // namespace cnnvis
