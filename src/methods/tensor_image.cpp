#include "cnnvis/methods/tensor_image.h"

#include <cstring>
#include <string>

#include <ATen/ATen.h>
#include <opencv2/core.hpp>

#include "cnnvis/core/errors.h"

namespace cnnvis {

at::Tensor images_to_tensor(const std::vector<cv::Mat>& inputs, const ModelCard& card, const at::Device& device) {
  const int h = card.input_height, w = card.input_width;
  at::Tensor batch = at::empty({static_cast<int64_t>(inputs.size()), h, w, 3}, at::kFloat);
  float* dst = batch.data_ptr<float>();
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const cv::Mat& m = inputs[i];
    if (m.type() != CV_32FC3 || m.rows != h || m.cols != w) {
      throw UsageError("model input " + std::to_string(i) + " must be " + std::to_string(w) + "x" + std::to_string(h) +
                       " RGB float");
    }
    cv::Mat contiguous = m.isContinuous() ? m : m.clone();
    std::memcpy(dst + i * h * w * 3, contiguous.ptr<float>(), sizeof(float) * h * w * 3);
  }
  at::Tensor mean = at::tensor({card.mean[0], card.mean[1], card.mean[2]}, at::kFloat).view({1, 3, 1, 1});
  at::Tensor std = at::tensor({card.std[0], card.std[1], card.std[2]}, at::kFloat).view({1, 3, 1, 1});
  at::Tensor x = batch.permute({0, 3, 1, 2});
  if (card.input_range != 1.0f) x = x * card.input_range;
  x = ((x - mean) / std).contiguous();
  return device.is_cpu() ? x : x.to(device);
}

cv::Mat tensor_to_map(const at::Tensor& map2d) {
  at::Tensor t = map2d.detach().to(at::kCPU, at::kFloat).contiguous();
  if (t.dim() != 2) throw std::logic_error("tensor_to_map needs a 2-D tensor");
  cv::Mat out(static_cast<int>(t.size(0)), static_cast<int>(t.size(1)), CV_32F);
  std::memcpy(out.ptr<float>(), t.data_ptr<float>(), sizeof(float) * t.numel());
  return out;
}

at::Tensor normalize_maps(const at::Tensor& maps) {
  const int64_t n = maps.size(0);
  at::Tensor flat = maps.reshape({n, -1});
  at::Tensor lo = std::get<0>(flat.min(1, true));
  at::Tensor shifted = flat - lo;
  at::Tensor hi = std::get<0>(shifted.max(1, true));
  return (shifted / (hi + 1e-7)).reshape(maps.sizes());
}

}  // namespace cnnvis
