#include "cnnvis/methods/guided_gradcam.h"

#include <opencv2/core.hpp>

#include "cnnvis/core/errors.h"
#include "cnnvis/methods/backprop.h"

namespace cnnvis {

cv::Mat guided_gradcam_product(const cv::Mat& guided_gradient, const cv::Mat& cam01) {
  if (guided_gradient.type() != CV_32FC3 || cam01.type() != CV_32F || guided_gradient.size() != cam01.size()) {
    throw UsageError("guided Grad-CAM needs a 3-channel float gradient and a float map of the same size");
  }
  cv::Mat cam3;
  cv::merge(std::vector<cv::Mat>{cam01, cam01, cam01}, cam3);
  return guided_gradient.mul(cam3);
}

std::vector<GuidedGradCamResult> run_guided_gradcam(LoadedModel& model, const std::vector<cv::Mat>& inputs,
                                                    const GradCamOptions& options) {
  const std::vector<GradCamResult> cams = run_gradcam(model, inputs, options);
  // The same target spec resolves to the same class in both passes ("top" is the argmax of the same
  // logits), so the whole batch goes through guided backprop at once.
  BackpropOptions backprop;
  backprop.mode = BackpropMode::guided;
  backprop.target = options.target;
  const std::vector<BackpropResult> guided_batch = run_backprop(model, inputs, backprop);
  std::vector<GuidedGradCamResult> out;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const BackpropResult& guided = guided_batch[i];
    if (guided.target.index != cams[i].target.index) {
      throw std::logic_error("guided Grad-CAM: the two passes chose different target classes");
    }
    GuidedGradCamResult r;
    r.layer = cams[i].layer;
    r.target = cams[i].target;
    r.cam = cams[i].cam;
    r.gradient = guided_gradcam_product(guided.gradient, cams[i].cam);
    std::vector<cv::Mat> channels;
    cv::split(cv::abs(r.gradient), channels);
    r.magnitude = cv::max(channels[0], cv::max(channels[1], channels[2]));
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace cnnvis
