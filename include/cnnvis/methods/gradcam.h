// Class activation maps: Grad-CAM and its family at one or more convolutional layers, for one or more
// target classes, from one forward pass.
//
//   gradcam     w_k = mean_ij g_k;                  cam = ReLU(sum_k w_k A_k)            (Selvaraju et al.)
//   gradcam++   w_k = sum_ij ReLU(g) alpha, alpha = g^2 / (2 g^2 + sum_ab A g^3)        (Chattopadhay et al.)
//   xgradcam    w_k = sum_ij g_k A_k / (sum_ij A_k + eps)                                 (Fu et al.)
//   layercam    cam = ReLU(sum_k ReLU(g_k) * A_k), elementwise                            (Jiang et al.)
//   hirescam    cam = ReLU(sum_k g_k * A_k), elementwise                                  (Draelos & Carin)
//   cam         cam = ReLU(sum_k W_fc[c,k] A_k) for global-average-pool + linear heads    (Zhou et al.)
//   eigencam    cam = ReLU(projection on the first principal component of A), no gradient (Muhammad & Yeasin)
//   eigengradcam  the same of g * A, so it depends on the class                        (pytorch-grad-cam)
//   scorecam    w = softmax_k(logit of the input masked by upsampled, normalised A_k)     (Wang et al.)
//   ablationcam w_k = (y - y with A_k zeroed) / y, from the layers after this one only   (Desai & Ramaswamy)
//   fullgrad    |x dy/dx| + sum over biased layers of |b dy/dz|, each channel normalised  (Srinivas & Fleuret)
//               one map of the whole network at input resolution: its layer reads "input"
// A = activations at the layer, g = d(raw logit of the target)/dA.
#pragma once

#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "cnnvis/core/progress.h"
#include "cnnvis/methods/target.h"
#include "cnnvis/models/loaded_model.h"

namespace cnnvis {

enum class CamMethod {
  gradcam,
  gradcam_plus_plus,
  xgradcam,
  layercam,
  hirescam,
  cam,
  eigencam,
  eigengradcam,
  scorecam,
  ablationcam,
  fullgrad
};
CamMethod parse_cam_method(const std::string& text);  // throws UsageError listing the names
const char* cam_method_name(CamMethod method);
std::vector<std::string> cam_method_names();

struct CamRequest {
  std::vector<CamMethod> methods = {CamMethod::gradcam};
  std::vector<std::string> layers;   // names or aliases; empty: the card's default layer
  std::vector<std::string> targets;  // "top", class indices or names; empty: {"top"} unless top_k > 0
  int top_k = 0;                     // also explain each image's K best classes
  int perturbation_batch = 32;       // scorecam / ablationcam: perturbed copies per forward pass
  ProgressCallback progress;         // scorecam / ablationcam: (copies done, total, method name)
};

struct CamMap {
  CamMethod method = CamMethod::gradcam;
  std::string layer;  // canonical name
  Prediction target;  // the class explained, with its logit and probability
  cv::Mat cam_layer;  // raw map at layer resolution (fullgrad: input resolution) (CV_32F, >= 0, unnormalised)
  cv::Mat cam;        // normalised to [0, 1] ((m - min) / (max + 1e-7)) and resized bilinearly to the input
};

struct ImageCams {
  std::vector<Prediction> top;  // top-5 predictions
  std::vector<CamMap> maps;     // per target, then layer, then method
};

// One forward pass for the batch with every layer tapped, then one backward pass per target slot that
// stops at the lowest layer (none for the gradient-free methods alone: cam, eigencam, scorecam,
// ablationcam). scorecam and ablationcam then run their perturbed copies once per layer (every target
// class is read from the same logits). inputs: model inputs from prepare_model_input
// (CV_32FC3 RGB [0, 1] at the card's size). Throws UsageError for an unknown or non-spatial layer, a bad
// target, `cam` on a model without a global-average-pool + linear head at that layer, or `fullgrad` on a
// model without biased layers. `ablationcam` at a layer the network cannot be run on from (inside a branch,
// or any layer of a TorchScript model) runs each ablated copy through the whole network instead.
std::vector<ImageCams> run_cams(LoadedModel& model, const std::vector<cv::Mat>& inputs, const CamRequest& request);

// Validates a request against a model without running it (so a CLI can fail fast); returns the
// canonical layer names.
std::vector<std::string> check_cam_request(const LoadedModel& model, const CamRequest& request);

// The single-method, single-target, single-layer case.
struct GradCamOptions {
  std::string layer;  // name or alias; empty: the card's default layer
  CamMethod method = CamMethod::gradcam;
  std::string target = "top";
};

struct GradCamResult {
  std::string layer;
  Prediction target;
  std::vector<Prediction> top;
  cv::Mat cam_layer;
  cv::Mat cam;
};

std::vector<GradCamResult> run_gradcam(LoadedModel& model, const std::vector<cv::Mat>& inputs,
                                       const GradCamOptions& options);

}  // namespace cnnvis
