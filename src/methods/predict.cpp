#include "cnnvis/methods/predict.h"

#include <algorithm>

#include <ATen/ATen.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/methods/prediction_util.h"
#include "cnnvis/methods/tensor_image.h"
#include "cnnvis/models/network.h"

namespace cnnvis {

std::vector<std::vector<Prediction>> run_predict(LoadedModel& model, const std::vector<cv::Mat>& inputs,
                                                 const PredictOptions& options) {
  if (options.top_k < 1) throw UsageError("--top-k must be at least 1");
  if (inputs.empty()) return {};
  c10::InferenceMode inference;
  at::Tensor x = images_to_tensor(inputs, model.card(), at::Device(model.device()));
  at::Tensor logits = model.network().forward(x).logits;
  return top_predictions(logits, model.card(), options.top_k);
}

}  // namespace cnnvis

namespace cnnvis {

std::vector<std::vector<Prediction>> top_predictions(const at::Tensor& logits, const ModelCard& card, int top_k) {
  at::Tensor cpu = logits.detach().to(at::kCPU, at::kFloat);
  at::Tensor probs = at::softmax(cpu, 1);
  const int k = std::min<int>(top_k, static_cast<int>(cpu.size(1)));
  auto [values, indices] = cpu.topk(k, 1);
  std::vector<std::vector<Prediction>> out(cpu.size(0));
  for (int64_t i = 0; i < cpu.size(0); ++i) {
    for (int j = 0; j < k; ++j) {
      Prediction p;
      p.index = static_cast<int>(indices[i][j].item<int64_t>());
      p.label = card.label(p.index);
      p.logit = values[i][j].item<float>();
      p.probability = probs[i][p.index].item<float>();
      out[i].push_back(std::move(p));
    }
  }
  return out;
}

std::vector<Prediction> class_predictions(const at::Tensor& logits, const at::Tensor& classes, const ModelCard& card) {
  at::Tensor cpu = logits.detach().to(at::kCPU, at::kFloat);
  at::Tensor probs = at::softmax(cpu, 1);
  at::Tensor classes_cpu = classes.to(at::kCPU);
  std::vector<Prediction> out(static_cast<std::size_t>(cpu.size(0)));
  for (int64_t i = 0; i < cpu.size(0); ++i) {
    Prediction& p = out[static_cast<std::size_t>(i)];
    p.index = static_cast<int>(classes_cpu[i].item<int64_t>());
    p.label = card.label(p.index);
    p.logit = cpu[i][p.index].item<float>();
    p.probability = probs[i][p.index].item<float>();
  }
  return out;
}

// Softmax probability of `target` for each row of a batch of normalised inputs, in chunks.
std::vector<float> target_probabilities(const Network& net, const at::Tensor& batch, int64_t target, int chunk) {
  std::vector<float> out;
  for (int64_t start = 0; start < batch.size(0); start += chunk) {
    const int64_t count = std::min<int64_t>(chunk, batch.size(0) - start);
    at::Tensor logits = net.forward(batch.narrow(0, start, count)).logits.to(at::kFloat);
    at::Tensor p = at::softmax(logits, 1).select(1, target).to(at::kCPU).contiguous();
    out.insert(out.end(), p.data_ptr<float>(), p.data_ptr<float>() + count);
  }
  return out;
}

}  // namespace cnnvis
