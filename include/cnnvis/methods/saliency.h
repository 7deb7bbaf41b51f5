// Pixel saliency from input gradients: vanilla (Simonyan et al. 2014), SmoothGrad (Smilkov et al.
// 2017), SmoothGrad-squared (Hooker et al. 2019), VarGrad (Adebayo et al. 2018), integrated gradients
// (Sundararajan et al. 2017) and input x gradient (Shrikumar et al. 2016). Always with standard ReLUs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "cnnvis/methods/target.h"
#include "cnnvis/models/loaded_model.h"

namespace cnnvis {

// Which statistic of the input gradient g = d logit_c / d x (x the normalised input) is computed:
//   automatic         chosen by the counts: integrated when integrated_steps > 0, smoothgrad when
//                     smooth_samples > 0, vanilla otherwise (the behaviour before methods were named)
//   vanilla           g
//   smoothgrad        mean of g over noisy copies
//   smoothgrad_sq     mean of g^2 over noisy copies (Captum NoiseTunnel "smoothgrad_sq")
//   vargrad           variance of g over noisy copies, mean of g^2 - (mean of g)^2 (Captum "vargrad")
//   integrated        integrated gradients from the zero baseline
//   input_x_gradient  x * g (Captum InputXGradient)
enum class SaliencyMethod { automatic, vanilla, smoothgrad, smoothgrad_sq, vargrad, integrated, input_x_gradient };

// "vanilla", "smoothgrad", "smoothgrad-sq", "vargrad", "integrated", "input-x-gradient" (underscores
// accepted too) -> the method; "" and "auto" -> automatic. Throws UsageError listing the names.
SaliencyMethod parse_saliency_method(const std::string& text);

// Sample count of the noisy methods, step count of integrated gradients when the method is named
// explicitly and its count is left at 0.
constexpr int kDefaultSaliencySamples = 50;

struct SaliencyOptions {
  SaliencyMethod method = SaliencyMethod::automatic;
  std::string target = "top";  // for "top" the class is fixed from the clean image before any noise
  int smooth_samples = 0;      // automatic: 0 vanilla gradient, N > 0 SmoothGrad over N noisy copies.
                               // smoothgrad / smoothgrad_sq / vargrad: the number of noisy copies
                               // (0: kDefaultSaliencySamples). Other methods: must be 0
  float noise = 0.15f;         // SmoothGrad noise sd as a fraction of the image's range (max - min of
                               // the normalised input, per image)
  int integrated_steps = 0;    // > 0: integrated gradients from a zero baseline (the mean colour after
                               // normalisation), midpoint Riemann sum with this many steps (method
                               // integrated: 0 means kDefaultSaliencySamples). Other methods: must be 0
  std::uint64_t seed = 0;      // SmoothGrad noise: same seed -> same map, whatever the batch
  int chunk = 16;              // noisy copies / path points per forward pass (bounds memory)
};

struct SaliencyResult {
  Prediction target;            // the class explained (from the clean image)
  std::vector<Prediction> top;  // top-5 predictions of the clean image
  cv::Mat map;       // CV_32F, >= 0, the max over colour channels of |gradient| (vanilla, smoothgrad,
                     // smoothgrad_sq, vargrad) or the sum over colour channels of |gradient|
                     // (integrated, input_x_gradient)
  cv::Mat gradient;  // CV_32FC3 RGB, per channel: the gradient (vanilla), its mean (smoothgrad), the mean of
                     // its square (smoothgrad_sq), its variance (vargrad), or the attribution:
                     // (x - baseline) * mean gradient (integrated), x * gradient (input_x_gradient)
};

// The method the options select, automatic resolved (never automatic).
SaliencyMethod resolve_saliency_method(const SaliencyOptions& options);

// The name of the method the options select, for manifests: "vanilla", "smoothgrad", "smoothgrad_sq",
// "vargrad", "integrated_gradients" or "input_x_gradient".
const char* saliency_method_name(const SaliencyOptions& options);

// Throws UsageError for bad options (what run_saliency checks first), so a command can fail before any input.
void validate_saliency_options(const SaliencyOptions& options);

// inputs: model inputs from prepare_model_input (CV_32FC3 RGB [0, 1], card size). The result of an
// image does not depend on the other images of the batch. Throws UsageError for a bad target or options
// (negative counts, both SmoothGrad and integrated gradients, a count the named method does not use).
std::vector<SaliencyResult> run_saliency(LoadedModel& model, const std::vector<cv::Mat>& inputs,
                                         const SaliencyOptions& options);

}  // namespace cnnvis
