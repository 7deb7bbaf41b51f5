// Scores for explanations: how well a saliency map ranks the pixels the model actually relies on.
//
//   deletion   (Petsiuk et al., RISE 2018) remove pixels in the map's order (highest first), replacing
//              them with the model's mean colour (0 after normalisation); the target's probability after
//              each step gives a curve; a good map makes it fall fast: lower area is better.
//   insertion  start from a blurred copy of the image (Gaussian, sigma = insertion_blur_sigma) and put the
//              original pixels back in the map's order; higher area is better.
//              Curves have steps + 1 points at fractions k / steps of the pixels (k = 0..steps); areas are
//              trapezoidal over the fraction axis [0, 1].
//   average drop / increase in confidence (Chattopadhay et al., Grad-CAM++ 2018): the image is masked by
//              the map scaled to [0, 1] (x' = baseline + m * (x - baseline), baseline the mean colour, i.e.
//              the normalised input multiplied by m); drop = max(0, p - p') / p, increase = p' > p. Lower
//              drop and more increases are better.
// Ties in the map are broken by pixel index (raster order), so results are deterministic.
#pragma once

#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "cnnvis/models/loaded_model.h"

namespace cnnvis {

struct EvaluateOptions {
  int steps = 32;                   // curve points - 1
  float insertion_blur_sigma = 0;   // 0: input width / 45 (RISE's sigma 5 at 224 px)
  int batch_size = 16;              // curve points per forward pass (bounds memory)
};

struct ExplanationScores {
  int target = 0;
  float probability = 0;             // target probability on the image
  std::vector<float> deletion;       // steps + 1 probabilities
  std::vector<float> insertion;
  float deletion_auc = 0;
  float insertion_auc = 0;
  float masked_probability = 0;      // target probability on the map-masked image
  float drop = 0;                    // max(0, p - p') / p
  bool increase = false;             // p' > p
};

// maps[i]: CV_32F saliency of inputs[i] (any size; resized bilinearly to the input). Negative values
// count as 0 for masking (for ordering the map is used as is). targets[i]: the class to score.
// inputs: CV_32FC3 RGB [0, 1] at the card's size. Throws UsageError for mismatched sizes or options.
std::vector<ExplanationScores> score_explanations(LoadedModel& model, const std::vector<cv::Mat>& inputs,
                                                  const std::vector<cv::Mat>& maps, const std::vector<int>& targets,
                                                  const EvaluateOptions& options = {});

// Checks an explanation's target and map (what: "evaluation", "ROAD"; throws UsageError naming it) and
// returns the map as an owning CV_32F width x height copy (resized bilinearly, NaN set to 0).
cv::Mat checked_score_map(const cv::Mat& map, int target, int num_classes, int width, int height, const std::string& what);

// Trapezoidal area under a curve sampled at equal steps over [0, 1].
float curve_area(const std::vector<float>& curve);

// Every explanation method the evaluation can run, by name: the CAM family (gradcam, gradcam++, ...),
// backprop-guided|deconv|vanilla|lrp-epsilon|lrp-epsilon-plus|lrp-epsilon-plus-flat|lrp-epsilon-plus-box,
// saliency, smoothgrad, smoothgrad-squared, vargrad, integrated-gradients, input-x-gradient, occlusion,
// rise (4000 masks, RISE's defaults).
std::vector<std::string> explanation_method_names();

struct Explanation {
  cv::Mat map;  // CV_32F at the model input size
  int target = 0;
};

// Runs one method on a batch for `target` ("top", index or class name). Throws UsageError for an unknown
// method (listing the names) or target.
std::vector<Explanation> explain(LoadedModel& model, const std::vector<cv::Mat>& inputs, const std::string& method,
                                 const std::string& target = "top");

}  // namespace cnnvis
