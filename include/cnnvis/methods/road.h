// ROAD: RemOve And Debias (Rong et al. 2022, "A Consistent and Efficient Evaluation Strategy for
// Attribution Methods"), as pytorch-grad-cam's metrics/road.py computes it.
//
// For each percentage k (default 10, 20, ..., 90) the k % most relevant pixels of the map (MoRF) or the
// k % least relevant ones (LeRF) are removed (ties broken by raster index, exactly round(k % of the
// pixels)) and filled by noisy linear imputation: every removed pixel equals the weighted mean of its 8
// neighbours inside the image (weight 1/6 for the 4 edge neighbours, 1/12 for the 4 diagonal ones,
// renormalised over the neighbours that exist), known pixels fixed. That sparse linear system is solved
// per channel on the network's normalised input, then Gaussian noise of sd `noise` is added to the
// imputed values (road.py's NoisyLinearImputer: 0.01 on the normalised input tensor). The target's
// softmax probability is recorded at each k. MoRF should fall fast (lower mean is better), LeRF should
// stay high (higher is better); ROADCombined = mean over k of (LeRF_k - MoRF_k) / 2 (higher is better).
//
// road.py's percentile p removes the pixels at or above the map's p-th percentile, i.e. the top
// (100 - p) %; over the symmetric default set {10, ..., 90} the averages are the same. road.py returns
// the change in the target's score (after - before): that is the probability here minus `probability`.
#pragma once

#include <cstdint>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "cnnvis/models/loaded_model.h"

namespace cnnvis {

struct RoadOptions {
  std::vector<int> percentages = {10, 20, 30, 40, 50, 60, 70, 80, 90};  // each in [1, 99]
  float noise = 0.01f;          // sd of the noise added to imputed values (normalised input); 0: none
  std::uint64_t seed = 0;       // noise of (seed, order, percentage): the same seed gives the same scores
  double tolerance = 1e-9;      // conjugate gradients stop at |residual| <= tolerance * |right-hand side|
  int batch_size = 16;          // imputed copies per forward pass
};

struct RoadScores {
  int target = 0;
  float probability = 0;     // target probability on the image
  std::vector<float> morf;   // probability after removing the top k % (one per percentage)
  std::vector<float> lerf;   // ... the bottom k %
  float morf_mean = 0;       // lower is better
  float lerf_mean = 0;       // higher is better
  float combined = 0;        // mean of (lerf - morf) / 2: higher is better
};

// Noisy linear imputation of one image. image: CV_32F with any number of channels; removed: CV_8U of
// the same size, nonzero where a pixel is removed. Returns a copy with the removed pixels replaced by the
// solution of the neighbour-average system (solved in double precision by Jacobi-preconditioned
// conjugate gradients to `tolerance`) plus noise of sd `noise` drawn from `rng` (none when 0). Known
// pixels are unchanged. Throws UsageError for mismatched sizes or when every pixel is removed.
cv::Mat impute_linear(const cv::Mat& image, const cv::Mat& removed, double tolerance = 1e-9, float noise = 0,
                      cv::RNG* rng = nullptr);

// maps / targets / inputs as score_explanations (evaluate.h). Throws UsageError for bad options.
std::vector<RoadScores> score_road(LoadedModel& model, const std::vector<cv::Mat>& inputs,
                                   const std::vector<cv::Mat>& maps, const std::vector<int>& targets,
                                   const RoadOptions& options = {});

}  // namespace cnnvis
