// Guided Grad-CAM (Selvaraju et al.): the guided-backpropagation image multiplied pixel-wise by the
// upsampled Grad-CAM map, so fine detail shows only where the class evidence is.
#pragma once

#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "cnnvis/methods/gradcam.h"

namespace cnnvis {

struct GuidedGradCamResult {
  std::string layer;
  Prediction target;
  cv::Mat gradient;   // CV_32FC3 RGB: guided gradient * cam, model input size
  cv::Mat magnitude;  // CV_32F: max over channels of |gradient|
  cv::Mat cam;        // the Grad-CAM map used (CV_32F [0, 1], model input size)
};

// The product itself: guided (CV_32FC3) times cam (CV_32F, same size) per channel.
cv::Mat guided_gradcam_product(const cv::Mat& guided_gradient, const cv::Mat& cam01);

// Grad-CAM (options.method) and guided backprop for the same target per image: two passes per batch.
std::vector<GuidedGradCamResult> run_guided_gradcam(LoadedModel& model, const std::vector<cv::Mat>& inputs,
                                                    const GradCamOptions& options);

}  // namespace cnnvis
