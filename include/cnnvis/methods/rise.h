// RISE: randomized input sampling for explanation (Petsiuk, Das & Saenko, BMVC 2018). The image is
// seen through N random smooth masks; the map at a pixel is the target's softmax probability averaged
// over the masks, each weighted by how much of that pixel it kept:
//
//   S(x, y) = sum_i P_c(I . M_i) M_i(x, y) / (N p)
//
// with p the keep probability (E[M_i] = p), so S is the expected probability given the pixel is kept.
// Masks as in the authors' code: an s x s grid of cells kept with probability p, upsampled bilinearly to
// (s + 1) * cell pixels with cell = ceil(H / s) (ceil(W / s) across), shifted by a random 0..cell-1
// pixels in x and y and cropped to H x W. A masked copy is I * M + (1 - M) * fill with fill = 0 in
// normalised space, i.e. the model's mean colour (occlusion's "mean" fill).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "cnnvis/methods/target.h"
#include "cnnvis/models/loaded_model.h"

namespace cnnvis {

struct RiseOptions {
  int masks = 4000;            // N
  int cells = 7;               // s: grid cells per side
  float keep = 0.5f;           // p: probability that a cell is kept, in (0, 1]
  std::string target = "top";  // "top" is fixed from the unmasked image
  int batch_size = 32;         // masks generated and held at once (rounded up to a multiple of 8): bounds
                               // memory. The network sees the masked copies 8 at a time whatever this
                               // is, so that the map does not depend on it (see rise.cpp)
  std::uint64_t seed = 0;      // mask i depends only on (seed, i): same seed, same map, whatever the batch
  // Called after every pass with (masks done, masks total) over all images of the call.
  std::function<void(std::size_t, std::size_t)> progress;
};

struct RiseResult {
  Prediction target;            // the class explained, with its unmasked logit and probability
  std::vector<Prediction> top;  // top-5 of the unmasked image
  cv::Mat map;                  // CV_32F, input size: S above (same units as a probability)
};

// Throws UsageError for bad options (masks, cells, batch size below 1, keep outside (0, 1]).
void validate_rise_options(const RiseOptions& options);

// Masks first .. first + count - 1 of options.seed for a height x width input: CV_32F in [0, 1].
std::vector<cv::Mat> rise_masks(int height, int width, const RiseOptions& options, int first, int count);

// inputs: model inputs from prepare_model_input (CV_32FC3 RGB [0, 1], card size). Each image is seen
// through the same options.masks masks of options.seed. Runs with standard ReLUs, in eval mode and
// without gradients. Throws UsageError for bad options or target.
std::vector<RiseResult> run_rise(LoadedModel& model, const std::vector<cv::Mat>& inputs, const RiseOptions& options);

// The same sum over the given masks (CV_32F, input size, values in [0, 1]) instead of generated ones:
// N = masks.size(), p = options.keep; options.masks, cells and seed are not used. For tests and for
// callers with their own masks.
RiseResult run_rise_with_masks(LoadedModel& model, const cv::Mat& input, const std::vector<cv::Mat>& masks,
                               const RiseOptions& options);

}  // namespace cnnvis
