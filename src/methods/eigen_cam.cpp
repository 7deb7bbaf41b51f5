#include "cnnvis/methods/eigen_cam.h"

#include <tuple>

#include <ATen/ATen.h>

#include "cnnvis/core/errors.h"

namespace cnnvis {

at::Tensor first_component_projection(const at::Tensor& m) {
  if (m.dim() != 4) throw UsageError("Eigen-CAM needs N x C x h x w activations");
  const int64_t n = m.size(0), c = m.size(1), h = m.size(2), w = m.size(3);
  // Double precision: the decomposition of a few hundred positions of hundreds of channels loses
  // digits in float when the first two singular values are close.
  const at::Tensor values = m.detach().to(at::kDouble);
  at::Tensor out = at::zeros({n, h, w}, m.options().dtype(at::kFloat));
  for (int64_t i = 0; i < n; ++i) {  // one image at a time: a map never depends on its batch
    const at::Tensor positions = values[i].reshape({c, h * w}).t();  // (h*w) x C
    const at::Tensor centred = positions - positions.mean(0, true);
    if (centred.abs().max().item<double>() == 0) continue;
    const at::Tensor vh = std::get<2>(at::linalg_svd(centred, /*full_matrices=*/false));
    at::Tensor projection = centred.matmul(vh[0]);  // h*w
    const at::Tensor strength = positions.mean(1);  // channel mean per position
    const double agreement = ((projection - projection.mean()) * (strength - strength.mean())).sum().item<double>();
    if (agreement < 0) projection = -projection;
    out[i].copy_(projection.reshape({h, w}));
  }
  return out;
}

}  // namespace cnnvis
