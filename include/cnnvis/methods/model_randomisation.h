// The cascading model-parameter randomisation test (Adebayo et al. 2018, "Sanity Checks for Saliency
// Maps"): the network's parameterised layers are re-initialised from the top (logits) down, one more layer
// at each step (cumulatively), the explanation is recomputed after every step for the class explained
// originally, and each randomised map is compared with the original one: Spearman rank correlation of the
// absolute values (the paper's measure) and SSIM of the maps scaled to [0, 1]. A method that depends on
// what the network learned shows correlations falling towards 0; an edge detector stays high.
//
// A step is one layer with parameters (Conv2d, Linear, ...); a BatchNorm2d right after a layer with
// parameters belongs to that layer's step. Re-initialisation uses the layer's own initialize() (native
// layers: the initialisation used for training; TorchScript modules: PyTorch's reset_parameters for
// Conv, Linear, BatchNorm, LayerNorm and GroupNorm, the only module types that are steps there) with
// LibTorch's generator seeded from (seed, step), so the random weights are the same for every method
// and run; the default CPU generator's state is put back afterwards. Every parameter and buffer is copied
// first and restored afterwards, also when a method throws: the model is unchanged for later use.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "cnnvis/methods/evaluate.h"
#include "cnnvis/models/loaded_model.h"

namespace cnnvis {

class Network;

struct RandomisationOptions {
  std::uint64_t seed = 0;
  int max_steps = 0;  // 0: randomise every step down to the first layer
};

struct RandomisationResult {
  std::vector<std::string> steps;               // the layer(s) newly randomised at each step, "a+b" when grouped
  std::vector<std::vector<float>> spearman;     // [step][input]: Spearman of |original| vs |randomised|
  std::vector<std::vector<float>> ssim;         // [step][input]: SSIM of the maps min-max scaled to [0, 1]
};

// The randomisation steps of a network, top (logits) first (definition order reversed); each entry lists
// the canonical names of the layers re-initialised together at that step.
std::vector<std::vector<std::string>> randomisation_steps(const Network& net);

// Re-initialises the named layers with their default initialisation, seeded.
void reinitialize_layers(Network& net, const std::vector<std::string>& layers, std::uint64_t seed);

// Copies every parameter and buffer of a network; restore() (and the destructor) copy them back in place.
class ParameterSnapshot {
 public:
  explicit ParameterSnapshot(Network& net);
  ~ParameterSnapshot();
  ParameterSnapshot(const ParameterSnapshot&) = delete;
  ParameterSnapshot& operator=(const ParameterSnapshot&) = delete;
  void restore();

 private:
  struct Saved;  // the copies (torch types stay out of this header: the CLI includes it)
  Network& net_;
  std::unique_ptr<Saved> saved_;
};

// Spearman rank correlation of two maps of the same size (ties share their mean rank); 0 when either
// map is constant (no ranking to compare).
float spearman_correlation(const cv::Mat& a, const cv::Mat& b);
// Mean SSIM (Wang et al. 2004: Gaussian window sigma 1.5, C1 = 0.01^2, C2 = 0.03^2) of two single-channel
// maps, each first min-max scaled to [0, 1] (a constant map becomes 0).
float map_ssim(const cv::Mat& a, const cv::Mat& b);

// Runs the cascade for one method. original[i]: the method's explanation of inputs[i] on the intact
// model (its target is the class explained at every step). Throws UsageError for a network without
// steps or mismatched sizes.
RandomisationResult cascading_randomisation(LoadedModel& model, const std::vector<cv::Mat>& inputs,
                                            const std::string& method, const std::vector<Explanation>& original,
                                            const RandomisationOptions& options = {});

}  // namespace cnnvis
