// "Watch the network learn": while training, the activations of every conv layer on a fixed set of
// sample images are recorded at regular steps and rendered as one frame per layer, written as PNG frames
// and as an animated GIF per layer, plus the loss/accuracy curves (PNG and JSON).
//
// The frames are drawn by movie_frames.h and encoded by io/gif.h. Torch-free interface.
#pragma once

#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "cnnvis/methods/movie_frames.h"
#include "cnnvis/methods/train.h"

namespace cnnvis {

class Network;

// ---------------------------------------------------------------------------------------------------
// The recorder used by train_fashion_vgg.

struct MovieSample {
  cv::Mat rgb;  // CV_8UC3 RGB, the model's input size
  int label = 0;
};

class TrainingMovie {
 public:
  // Records the outputs of every node of type Conv2d, at most max_channels channels each (the first
  // ones). Creates dir and one sub-directory per layer. Throws OutputError.
  TrainingMovie(const std::string& dir, const Network& network, std::vector<MovieSample> samples,
                const std::string& device, int max_channels = 16);
  ~TrainingMovie();

  // One frame per layer for the network's current weights, run in eval mode without gradients; the
  // network's training mode is restored afterwards.
  void record(Network& network, std::int64_t step);
  // Writes the curves (PNG, JSON), closes the GIFs and returns every file written.
  std::vector<std::string> finish(const std::vector<TrainCurvePoint>& curve, const std::vector<TestAccuracyPoint>& test);

  const std::vector<std::string>& layers() const { return layers_; }
  std::int64_t frames_recorded() const { return static_cast<std::int64_t>(steps_.size()); }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string dir_;
  std::vector<std::string> layers_;
  std::vector<std::int64_t> steps_;
  std::vector<std::string> files_;
};

}  // namespace cnnvis
