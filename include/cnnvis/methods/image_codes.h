// One feature vector ("code") per image at a named layer, for embeddings such as t-SNE.
#pragma once

#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "cnnvis/models/loaded_model.h"

namespace cnnvis {

enum class CodePooling { mean, max };
CodePooling parse_code_pooling(const std::string& text);  // "mean" | "max"; UsageError otherwise

struct ImageCodes {
  int dims = 0;                        // length of every code
  std::vector<std::vector<float>> codes;  // one per input
  std::vector<Prediction> top;         // the top-1 class per input
};

// layer: name or alias (resolved by the model). A C x H x W output is pooled over space (mean or max)
// into C values; a flat output (fully connected layers, logits) is used as is.
ImageCodes compute_image_codes(LoadedModel& model, const std::vector<cv::Mat>& inputs, const std::string& layer,
                               CodePooling pooling = CodePooling::mean);

}  // namespace cnnvis
