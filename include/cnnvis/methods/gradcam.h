// Class activation maps from gradients at a convolutional layer (Grad-CAM and Grad-CAM++).
#pragma once

#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "cnnvis/methods/target.h"
#include "cnnvis/models/loaded_model.h"

namespace cnnvis {

enum class CamMethod { gradcam, gradcam_plus_plus };
CamMethod parse_cam_method(const std::string& text);  // "gradcam" | "gradcam++"
const char* cam_method_name(CamMethod method);

struct GradCamOptions {
  std::string layer;  // name or alias; empty: the card's default layer
  CamMethod method = CamMethod::gradcam;
  std::string target = "top";
};

struct GradCamResult {
  std::string layer;  // canonical name
  Prediction target;  // the class explained, with its logit and probability
  std::vector<Prediction> top;  // top-5 predictions of the image
  cv::Mat cam_layer;  // raw CAM at layer resolution (CV_32F, >= 0, unnormalised)
  cv::Mat cam;        // normalised to [0, 1] and resized bilinearly to the model input (CV_32F)
};

// One forward and one backward pass for the whole batch; the backward pass stops at the layer.
// inputs: model inputs from prepare_model_input (CV_32FC3 RGB [0, 1] at the card's size).
// Throws UsageError for an unknown layer, a non-spatial layer, or a bad target.
std::vector<GradCamResult> run_gradcam(LoadedModel& model, const std::vector<cv::Mat>& inputs,
                                       const GradCamOptions& options);

}  // namespace cnnvis
