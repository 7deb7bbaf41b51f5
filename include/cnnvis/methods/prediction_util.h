// Shared helper: logits -> ranked predictions (library-internal; needs ATen).
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

#include "cnnvis/models/loaded_model.h"

namespace cnnvis {

// logits: N x K. Returns, per row, the top_k classes by logit with softmax probabilities.
std::vector<std::vector<Prediction>> top_predictions(const at::Tensor& logits, const ModelCard& card, int top_k);

// logits: N x K, classes: N class indices (any device). Returns, per row, that class with its logit
// and softmax probability: the target an explanation method explained.
std::vector<Prediction> class_predictions(const at::Tensor& logits, const at::Tensor& classes, const ModelCard& card);

class Network;

// Softmax probability of `target` for each row of `batch` (normalised inputs), `chunk` rows per pass.
std::vector<float> target_probabilities(const Network& net, const at::Tensor& batch, int64_t target, int chunk);

}  // namespace cnnvis
