// Feature visualisation by activation maximisation: optimise an input image, starting from noise, so that
// a unit of the network responds as strongly as possible (Erhan et al.; Simonyan et al.'s class models;
// Olah et al., "Feature Visualization", distill.pub 2017, whose Lucid library gives the defaults here).
//
// One image per unit, all units optimised together as one batch. The image is parameterised either by
// its pixels or by a 1/f-scaled Fourier spectrum with ImageNet colour decorrelation, squashed into [0, 1]
// by a sigmoid; every step applies random robustness transforms (pad, jitter, scale, rotate, jitter)
// drawn from a seeded generator, so the same seed gives the same image. For the first steps the ReLUs
// pass gradient that would otherwise be blocked (Lucid's redirected ReLU), or a dead unit leaves its image
// grey. Also here: octave zoom (start small, upscale, optimise again, then keep zooming into the centre)
// and deep dream on a user's image. Torch-free interface.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "cnnvis/core/progress.h"
#include "cnnvis/models/loaded_model.h"

namespace cnnvis {

enum class ObjectiveKind {
  channel,    // mean of one channel's activation map
  neuron,     // one channel at one spatial position (default: the centre of the map)
  class_logit,  // a pre-softmax logit (Simonyan's class model); layer ignored
  direction,  // mean over positions of (h . v) * max(0.1, cos(h, v))^cosine_power
  direction_neuron,  // the same at one position (x, y; -1 = the centre): the Activation Atlas's icon
                     // objective (Lucid's direction_neuron_cossim_S); a flat layer uses its whole vector
  deepdream,  // mean of the squared activations of the whole layer
};
ObjectiveKind parse_objective_kind(const std::string& text);  // throws UsageError listing the names
const char* objective_kind_name(ObjectiveKind kind);

struct Objective {
  ObjectiveKind kind = ObjectiveKind::channel;
  std::string layer;  // name or alias (not used for class_logit)
  int channel = 0;    // channel, neuron: the channel; class_logit: the class index
  int x = -1, y = -1; // neuron, direction_neuron: position in the layer's map; -1 = the centre
  std::vector<float> direction;  // direction, direction_neuron: one weight per channel of the layer
  float cosine_power = 0.0f;     // direction, direction_neuron: 0 = plain dot product
  // A short human-readable name ("relu4:12", "logit 3 (Sandal)").
  std::string describe() const;
};

enum class ImageParameterization { pixel, fourier };
ImageParameterization parse_parameterization(const std::string& text);
const char* parameterization_name(ImageParameterization p);

struct TransformOptions {
  bool enabled = true;
  int pad = 12;              // constant padding (value 0.5) on every side
  int jitter = 8;            // random crop of up to this many pixels
  std::vector<float> scales; // random scale, one of these; empty: Lucid's 0.90, 0.92, .., 1.10
  float rotate_degrees = 10; // random rotation, a whole number of degrees in [-r, r], 0 five times as likely
  int final_jitter = 4;
};

struct ActivationMaxOptions {
  int steps = 512;
  int width = 128, height = 128;
  float learning_rate = 0.05f;  // Adam
  ImageParameterization parameterization = ImageParameterization::fourier;
  bool decorrelate = true;      // ImageNet colour decorrelation
  float init_sd = 0.01f;        // standard deviation of the initial parameters
  TransformOptions transforms;
  int redirect_steps = 16;      // steps with redirected ReLU gradients (0 = never)
  // Penalties on the [0, 1] image, each a mean over pixels so that weights do not depend on the size:
  float l2 = 0.0f;     // mean (x - 0.5)^2
  float tv = 0.0f;     // mean |x(i+1,j) - x(i,j)| + |x(i,j+1) - x(i,j)|
  float blur = 0.0f;   // mean (x - blur3x3(x))^2, the blur held constant (Lucid's blur_input_each_step)
  // Images per unit; with diversity > 0 each unit's images are pushed apart by Lucid's diversity term
  // (normalised Gram matrices of the objective's layer).
  int images_per_unit = 1;
  float diversity = 0.0f;
  std::uint64_t seed = 0;
  // Optional starting images (CV_32FC3 RGB in [0, 1]), one per output image, of any size (resized).
  // Empty: start from seeded noise.
  std::vector<cv::Mat> initial_images;
  ProgressCallback progress;
};

struct ActivationMaxResult {
  Objective objective;
  std::string layer;       // canonical layer name ("" for class_logit)
  int copy = 0;            // which of images_per_unit
  cv::Mat image;           // CV_32FC3 RGB in [0, 1], width x height
  float objective_start = 0;  // the objective on the starting image (untransformed)
  float objective_final = 0;  // the objective on the final image (untransformed)
  std::vector<float> curve;   // the objective (as optimised, transforms included) per step
};

// Optimises one image per (unit, copy). Throws UsageError for an unknown layer, a channel or class out of
// range, a neuron outside the map, a direction of the wrong length, or bad options.
std::vector<ActivationMaxResult> run_activation_max(LoadedModel& model, const std::vector<Objective>& objectives,
                                                    const ActivationMaxOptions& options);

// Evaluates the objectives on given images (CV_32FC3 RGB [0, 1], any size, all the same), without
// transforms; one value per (objective, image) pair, objectives[i] on images[i].
std::vector<float> evaluate_objectives(LoadedModel& model, const std::vector<Objective>& objectives,
                                       const std::vector<cv::Mat>& images);

// Number of channels of a layer's output (for choosing random units).
int layer_channels(const LoadedModel& model, const std::string& layer);

// ---------------------------------------------------------------------------------------------------
// Octave zoom (Osinga's deep-learning cookbook): optimise at start_size, upscale by octave_scale and
// optimise again until the target size; then every frame zooms into the centre by zoom_scale (upscale and
// centre-crop back to the target size) and optimises a few steps, so the frames form a continuous zoom.

struct OctaveZoomOptions {
  ActivationMaxOptions base;  // width/height = the target size; steps unused (see below)
  int start_size = 64;
  float octave_scale = 1.3f;
  int octave_steps = 48;       // steps at each octave, the first included
  int zoom_frames = 24;        // frames after reaching the target size
  float zoom_scale = 1.05f;
  int zoom_steps = 16;         // steps per zoom frame
  int cycle_every = 0;         // > 0 and several objectives: switch to the next objective every N zoom frames
};

struct ZoomFrame {
  int index = 0;
  std::string stage;   // "octave" or "zoom"
  std::size_t objective = 0;  // index into the objectives
  cv::Mat image;       // CV_32FC3 RGB [0, 1]; octave frames are smaller than the target
  float objective_value = 0;
};

// Calls on_frame for every frame as it is made (frames are not kept). Returns the number of frames.
int run_octave_zoom(LoadedModel& model, const std::vector<Objective>& objectives, const OctaveZoomOptions& options,
                    const std::function<void(const ZoomFrame&)>& on_frame);

// ---------------------------------------------------------------------------------------------------
// Deep dream (Mordvintsev et al.; the original notebook's octave loop): gradient ascent on the user's image
// itself for mean(act^2) summed over layers, from the smallest octave up, carrying the added detail
// to the next octave; each step rolls the image by a random shift (jitter) and moves it by
// step_size / mean|g| * g.

struct DeepDreamOptions {
  std::vector<std::string> layers;  // names or aliases; at least one
  int octaves = 4;
  float octave_scale = 1.4f;
  int steps = 10;             // per octave
  float step_size = 1.5f / 255.0f;  // in [0, 1] pixel units (the notebook's 1.5 on a 0..255 image)
  int jitter = 32;
  int max_side = 0;           // > 0: shrink the image first so its longest side is at most this
  std::uint64_t seed = 0;
  ProgressCallback progress;
};

struct DeepDreamResult {
  cv::Mat image;  // CV_8UC3 RGB, the (possibly shrunk) input's size
  float objective_start = 0, objective_final = 0;  // at full size
};

// image: CV_8UC3 RGB. Throws UsageError for an unknown layer or bad options.
DeepDreamResult run_deepdream(LoadedModel& model, const cv::Mat& image_rgb8, const DeepDreamOptions& options);

}  // namespace cnnvis
