// Classification: top-k classes with names and probabilities.
#pragma once

#include <vector>

#include <opencv2/core/mat.hpp>

#include "cnnvis/models/loaded_model.h"

namespace cnnvis {

struct PredictOptions {
  int top_k = 5;
};

// inputs: model inputs from prepare_model_input (CV_32FC3 RGB [0,1] at the card's size), one batch.
std::vector<std::vector<Prediction>> run_predict(LoadedModel& model, const std::vector<cv::Mat>& inputs,
                                                 const PredictOptions& options = {});

}  // namespace cnnvis
