// Shared helper: logits -> ranked predictions (library-internal; needs ATen).
#pragma once

#include <vector>

#include <ATen/core/Tensor.h>

#include "cnnvis/models/loaded_model.h"

namespace cnnvis {

// logits: N x K. Returns, per row, the top_k classes by logit with softmax probabilities.
std::vector<std::vector<Prediction>> top_predictions(const at::Tensor& logits, const ModelCard& card, int top_k);

}  // namespace cnnvis
