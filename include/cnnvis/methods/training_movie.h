// "Watch the network learn": while training, the activations of every conv layer on a fixed set of
// sample images are recorded at regular steps and rendered as one frame per layer, written as PNG frames
// and as an animated GIF per layer, plus the loss/accuracy curves (PNG and JSON).
//
// The rendering and GIF functions are pure (cv::Mat in, cv::Mat or bytes out) so that tests can check
// colours and frame counts without training. Torch-free interface.
#pragma once

#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "cnnvis/methods/train.h"

namespace cnnvis {

class Network;

// ---------------------------------------------------------------------------------------------------
// Frame rendering

struct ActivationFrameStyle {
  int cell = 40;         // side of one map cell in pixels (maps are scaled with nearest neighbour)
  int gap = 2;           // white space between cells
  int label_width = 34;  // left column with channel numbers
  int title_height = 24; // top band with layer name and step
};

// One frame of a layer's movie. samples: CV_8UC3 RGB images (the header row, one column each).
// maps[s][c]: CV_32F map of channel c for sample s (all the same size; every sample the same channels).
// channel_ids: the channel numbers shown in the left column (maps[s][c] is channel channel_ids[c]).
// The maps are coloured with the diverging colormap (positive blue, zero white, negative red) on ONE
// symmetric scale: `scale`, or max |value| over all maps when scale <= 0, so that brightness is
// comparable across samples and channels of the frame. Returns CV_8UC3 RGB.
cv::Mat render_activation_frame(const std::vector<cv::Mat>& samples, const std::vector<std::vector<cv::Mat>>& maps,
                                const std::vector<int>& channel_ids, const std::string& layer, std::int64_t step,
                                float scale = 0.0f, const ActivationFrameStyle& style = {});

// Where sample s / channel row c's map cell lies in a frame rendered with these counts (for tests).
cv::Rect activation_frame_cell(std::size_t sample, std::size_t channel_row, const ActivationFrameStyle& style = {});

// Loss and accuracy over training steps on a white canvas with labelled axes: left panel the training
// loss, right panel training accuracy (line) and test accuracy after each epoch (dots). Returns
// CV_8UC3 RGB.
struct TestAccuracyPoint {
  std::int64_t step = 0;
  double epoch = 0;
  double accuracy = 0;
};
cv::Mat render_training_curves(const std::vector<TrainCurvePoint>& curve, const std::vector<TestAccuracyPoint>& test);

// ---------------------------------------------------------------------------------------------------
// Animated GIF (GIF89a, one global palette, LZW), written incrementally so that frames need not be
// kept in memory.

// The movie's fixed 256-colour palette (RGB triples): 128 steps of the diverging colormap, so that the
// maps keep their exact colours (white included), plus a 5x5x5 colour cube and greys for the sample
// images and the text.
const std::vector<cv::Vec3b>& movie_palette();

// A palette for frames that look like photographs (feature visualisations, zoom movies): a 6x7x6 colour
// cube plus four greys; GifWriter dithers to it with a fixed 4x4 Bayer pattern, so still areas do not
// flicker between frames.
const std::vector<cv::Vec3b>& image_palette();

class GifWriter {
 public:
  // delay_cs: time per frame in hundredths of a second; the animation loops forever. Throws OutputError.
  GifWriter(const std::string& path, int width, int height, int delay_cs = 25);
  // The same with image_palette() and ordered dithering (photo_frames) or with movie_palette().
  GifWriter(const std::string& path, int width, int height, int delay_cs, bool photo_frames);
  ~GifWriter();
  GifWriter(const GifWriter&) = delete;
  GifWriter& operator=(const GifWriter&) = delete;

  // frame: CV_8UC3 RGB of the writer's size; each pixel becomes the nearest palette colour.
  void add_frame(const cv::Mat& frame_rgb);
  // Writes the trailer and closes the file (also done by the destructor, which cannot report errors).
  void close();
  int frames() const { return frames_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int width_, height_, delay_cs_;
  bool photo_ = false;
  int frames_ = 0;
  std::ofstream out_;
  bool closed_ = false;
};

// LZW-compressed GIF image data for palette indices (min code size 8), as data sub-blocks ending with
// the zero-length block terminator. Exposed for tests.
std::vector<std::uint8_t> gif_lzw_encode(const std::vector<std::uint8_t>& indices);

// Counts the frames of a GIF file (graphic control extensions followed by an image), checking the
// block structure. Returns -1 when the file is not a well-formed GIF89a. For tests and checks.
int count_gif_frames(const std::string& path);

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
