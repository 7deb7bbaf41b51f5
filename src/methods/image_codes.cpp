#include "cnnvis/methods/image_codes.h"

#include <ATen/ATen.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/methods/prediction_util.h"
#include "cnnvis/methods/tensor_image.h"
#include "cnnvis/models/network.h"

namespace cnnvis {

CodePooling parse_code_pooling(const std::string& text) {
  if (text == "mean") return CodePooling::mean;
  if (text == "max") return CodePooling::max;
  throw UsageError("unknown pooling '" + text + "' (expected mean or max)");
}

ImageCodes compute_image_codes(LoadedModel& model, const std::vector<cv::Mat>& inputs, const std::string& layer,
                               CodePooling pooling) {
  ImageCodes out;
  if (inputs.empty()) return out;
  const std::string name = model.resolve_layer(layer);
  c10::InferenceMode inference;
  at::Tensor x = images_to_tensor(inputs, model.card(), at::Device(model.device()));
  ForwardRequest request;
  request.taps = {name};
  ForwardResult result = model.network().forward(x, request);
  at::Tensor tap = result.taps.at(name).detach().to(at::kCPU, at::kFloat);
  if (tap.dim() == 4) {
    tap = pooling == CodePooling::mean ? tap.mean({2, 3}) : tap.amax({2, 3});
  } else if (tap.dim() != 2) {
    tap = tap.reshape({tap.size(0), -1});
  }
  tap = tap.contiguous();
  out.dims = static_cast<int>(tap.size(1));
  const float* data = tap.data_ptr<float>();
  for (int64_t i = 0; i < tap.size(0); ++i) out.codes.emplace_back(data + i * out.dims, data + (i + 1) * out.dims);
  for (auto& p : top_predictions(result.logits, model.card(), 1)) out.top.push_back(p.at(0));
  return out;
}

}  // namespace cnnvis
