#include "cnnvis/methods/unit_peaks.h"

#include <ATen/ATen.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/methods/tensor_image.h"
#include "cnnvis/models/network.h"

namespace cnnvis {

UnitPeaks compute_unit_peaks(LoadedModel& model, const std::vector<cv::Mat>& inputs, const std::string& layer,
                             const std::vector<int>& channels) {
  UnitPeaks out;
  out.layer = model.resolve_layer(layer);
  out.channels = channels;
  if (inputs.empty()) return out;
  c10::InferenceMode inference;
  at::Tensor x = images_to_tensor(inputs, model.card(), at::Device(model.device()));
  ForwardRequest request;
  request.taps = {out.layer};
  request.need_logits = false;
  at::Tensor tap = model.network().forward(x, request).taps.at(out.layer).detach().to(at::kCPU, at::kFloat);
  if (tap.dim() != 2 && tap.dim() != 4) tap = tap.reshape({tap.size(0), -1});
  const int total = static_cast<int>(tap.size(1));
  if (out.channels.empty()) {
    for (int c = 0; c < total; ++c) out.channels.push_back(c);
  }
  for (int c : out.channels) {
    if (c < 0 || c >= total) {
      throw UsageError("channel " + std::to_string(c) + " is out of range for layer " + out.layer + " (0.." +
                       std::to_string(total - 1) + ")");
    }
  }
  at::Tensor index = at::tensor(std::vector<int64_t>(out.channels.begin(), out.channels.end()), at::kLong);
  tap = tap.index_select(1, index);
  at::Tensor values, positions;
  if (tap.dim() == 4) {
    out.spatial = true;
    out.height = static_cast<int>(tap.size(2));
    out.width = static_cast<int>(tap.size(3));
    std::tie(values, positions) = tap.reshape({tap.size(0), tap.size(1), -1}).max(2);
  } else {
    values = tap;
    positions = at::zeros_like(tap, at::kLong);
  }
  values = values.contiguous();
  positions = positions.to(at::kLong).contiguous();
  const float* v = values.data_ptr<float>();
  const int64_t* p = positions.data_ptr<int64_t>();
  const std::size_t c_count = out.channels.size();
  out.peaks.assign(inputs.size(), std::vector<UnitPeak>(c_count));
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    for (std::size_t c = 0; c < c_count; ++c) {
      UnitPeak& peak = out.peaks[i][c];
      peak.value = v[i * c_count + c];
      peak.y = static_cast<int>(p[i * c_count + c] / out.width);
      peak.x = static_cast<int>(p[i * c_count + c] % out.width);
    }
  }
  return out;
}

}  // namespace cnnvis
