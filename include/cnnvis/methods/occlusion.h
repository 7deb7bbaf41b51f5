// Occlusion sensitivity (Zeiler & Fergus 2014): slide a patch over the image, fill it with a baseline
// and record how much the target's score drops. The map at a pixel is the mean drop over every window
// that covers it.
//
// Two engines give the same map (to float rounding):
//   exact_naive  one forward pass per occluded copy, batch_size copies per pass (Captum's
//                perturbations_per_eval); the floor every peer stops at.
//   incremental  an occluded copy differs from the original only inside the patch, so each layer is
//                recomputed only in the region the patch can reach (plus the halo its kernel reads from
//                the cached unoccluded activations); once that region covers the whole map, or at a layer
//                without a local rule (global pooling, linear, Inception concat), the rest runs in full on
//                the patched activations (Nakandala et al., "Incremental and approximate inference for
//                faster occlusion-based deep CNN explanations", SIGMOD 2019, without their approximations).
//
// Windows: per axis of length D, ceil((D - P) / S) + 1 windows at 0, S, 2S, ... with the last one moved
// back to end exactly at the border (D - P), so every pixel is covered and no window leaves the image.
// A patch larger than the image is clipped to it (one window on that axis).
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>
#include <opencv2/core/types.hpp>

#include "cnnvis/methods/target.h"
#include "cnnvis/models/loaded_model.h"

namespace cnnvis {

// What fills the occluded window:
//   mean  the model's mean colour (0 after normalisation; Captum's default baseline)
//   zero  black (RGB 0)
//   gray  mid grey (RGB 0.5)
//   blur  the image itself blurred with a Gaussian (sigma = blur_sigma, default patch / 2), which removes
//         detail without introducing a foreign colour
enum class OcclusionFill { mean, zero, gray, blur };
OcclusionFill parse_occlusion_fill(const std::string& text);  // throws UsageError listing the names
const char* occlusion_fill_name(OcclusionFill fill);

// Which score the drop is measured on: the raw logit, or the softmax probability of the target
// (Zeiler & Fergus's "probability of the correct class"; the occluded probability itself is returned too).
enum class OcclusionMeasure { logit, prob };
OcclusionMeasure parse_occlusion_measure(const std::string& text);
const char* occlusion_measure_name(OcclusionMeasure measure);

struct OcclusionOptions {
  int patch = 32;   // window side in model-input pixels
  int stride = 16;  // step between windows
  OcclusionFill fill = OcclusionFill::mean;
  float blur_sigma = 0;  // blur fill only; 0: patch / 2
  OcclusionMeasure measure = OcclusionMeasure::logit;
  std::string target = "top";  // "top" is fixed from the unoccluded image
  int batch_size = 16;         // occluded windows per pass: bounds memory
  bool exact_naive = false;    // brute force (checking, timing)
  // Called after every batch with (windows done, windows total) over all images of the call.
  std::function<void(std::size_t, std::size_t)> progress;
};

struct OcclusionResult {
  Prediction target;            // the class explained, with its unoccluded logit and probability
  std::vector<Prediction> top;  // top-5 of the unoccluded image
  float score = 0;              // unoccluded score in the chosen measure
  cv::Mat map;                  // CV_32F, input size: mean over covering windows of score - occluded score
  cv::Mat occluded_score;       // CV_32F, input size: mean over covering windows of the occluded score
  cv::Mat window_drops;         // CV_32F, rows x cols of windows: each window's drop
  std::vector<cv::Rect> windows;
  std::string engine;           // "incremental" or "exact_naive"
};

// The windows for an image of height x width (see the rule above), in raster order.
// Throws UsageError when patch or stride is below 1.
std::vector<cv::Rect> occlusion_windows(int height, int width, int patch, int stride);

// inputs: model inputs from prepare_model_input (CV_32FC3 RGB [0, 1], card size). Runs with standard
// ReLUs, in eval mode and without gradients. Throws UsageError for bad options or target.
std::vector<OcclusionResult> run_occlusion(LoadedModel& model, const std::vector<cv::Mat>& inputs,
                                           const OcclusionOptions& options);

// How the incremental engine treats each layer of a model at its card's input size, for logs and tests:
// the layers it recomputes locally, and where (and why) the full computation takes over for a patch.
struct OcclusionPlan {
  std::size_t layers = 0;            // leaf layers in execution order
  std::size_t incremental_layers = 0;  // of them, computed on regions only (for an interior window)
  std::string full_from;             // first layer computed in full ("" when none)
  std::string reason;                // why: "region covers the map", "global layer", "no local rule"
};
OcclusionPlan plan_occlusion(LoadedModel& model, const OcclusionOptions& options);

}  // namespace cnnvis
