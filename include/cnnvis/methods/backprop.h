// Input-gradient images: vanilla gradient, guided backpropagation (Springenberg et al.) and the
// deconvnet (Zeiler & Fergus). The three differ only in the backward rule of every ReLU, switched
// model-wide for the duration of a run (see ReluMode in models/network.h). Also layer-wise relevance
// propagation (lrp.h) with zennit's presets: lrp-epsilon, lrp-epsilon-plus, lrp-epsilon-plus-flat,
// lrp-epsilon-plus-box.
#pragma once

#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "cnnvis/methods/target.h"
#include "cnnvis/models/loaded_model.h"

namespace cnnvis {

enum class BackpropMode { vanilla, guided, deconv, lrp_epsilon, lrp_epsilon_plus, lrp_epsilon_plus_flat, lrp_epsilon_plus_box };
BackpropMode parse_backprop_mode(const std::string& text);  // throws UsageError listing the choices
const char* backprop_mode_name(BackpropMode mode);

struct BackpropOptions {
  BackpropMode mode = BackpropMode::guided;
  std::string target = "top";
  double lrp_epsilon = 1e-6;  // LRP modes: the epsilon rule's epsilon (and the other rules' stabiliser)
};

struct BackpropResult {
  Prediction target;            // the class explained, with its logit and probability
  std::vector<Prediction> top;  // top-5 predictions of the image
  cv::Mat gradient;   // CV_32FC3 RGB: d score / d input in normalised input space, model input size
                      // (LRP: the relevance of each input value; they sum to about the logit)
  cv::Mat magnitude;  // CV_32F: max over the channels of |gradient| (LRP: max(0, sum over channels),
                      // the positive evidence per pixel)
};

// One forward and one backward pass for the whole batch; the score is the target's raw logit
// (pre-softmax). inputs: model inputs from prepare_model_input (CV_32FC3 RGB [0, 1], card size).
// The model's ReLU mode is restored afterwards, also when this throws. Throws UsageError for a bad target.
std::vector<BackpropResult> run_backprop(LoadedModel& model, const std::vector<cv::Mat>& inputs,
                                         const BackpropOptions& options);

// Throws UsageError for a mode the model cannot run (LRP on a TorchScript model), before any input.
void check_backprop_request(const LoadedModel& model, const BackpropOptions& options);

// A signed gradient image for display (pytorch-grad-cam's deprocess_image): over all pixels and
// channels, (x - mean) / (std + 1e-5) * 0.1 + 0.5, clipped to [0, 1]. CV_32FC3 -> CV_8UC3 (same order).
cv::Mat gradient_to_display(const cv::Mat& gradient_rgb);

}  // namespace cnnvis
