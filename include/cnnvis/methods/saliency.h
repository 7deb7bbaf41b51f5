// Pixel saliency from input gradients: vanilla (Simonyan et al. 2014), SmoothGrad (Smilkov et al.
// 2017) and integrated gradients (Sundararajan et al. 2017). Always with standard ReLUs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "cnnvis/methods/target.h"
#include "cnnvis/models/loaded_model.h"

namespace cnnvis {

struct SaliencyOptions {
  std::string target = "top";  // for "top" the class is fixed from the clean image before any noise
  int smooth_samples = 0;      // 0: vanilla gradient; N > 0: SmoothGrad over N noisy copies
  float noise = 0.15f;         // SmoothGrad noise sd as a fraction of the image's range (max - min of
                               // the normalised input, per image)
  int integrated_steps = 0;    // > 0: integrated gradients from a zero baseline (the mean colour after
                               // normalisation), midpoint Riemann sum with this many steps
  std::uint64_t seed = 0;      // SmoothGrad noise: same seed -> same map, whatever the batch
  int chunk = 16;              // noisy copies / path points per forward pass (bounds memory)
};

struct SaliencyResult {
  Prediction target;            // the class explained (from the clean image)
  std::vector<Prediction> top;  // top-5 predictions of the clean image
  cv::Mat map;       // CV_32F, >= 0. Vanilla: max over channels of |grad|; SmoothGrad: max over channels
                     // of |mean grad|; integrated gradients: sum over channels of |attribution|
  cv::Mat gradient;  // CV_32FC3 RGB: the (averaged) gradient, or the IG attribution (x - baseline) * mean grad
};

// Which of the three methods the options select: "vanilla", "smoothgrad" or "integrated_gradients".
const char* saliency_method_name(const SaliencyOptions& options);

// inputs: model inputs from prepare_model_input (CV_32FC3 RGB [0, 1], card size). The result of an
// image does not depend on the other images of the batch. Throws UsageError for a bad target or options
// (negative counts, both SmoothGrad and integrated gradients).
std::vector<SaliencyResult> run_saliency(LoadedModel& model, const std::vector<cv::Mat>& inputs,
                                         const SaliencyOptions& options);

}  // namespace cnnvis
