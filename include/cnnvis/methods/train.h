// Training cnnvis's demo model (fashion_vgg) on Fashion-MNIST "items on a canvas", with an optional
// recording of how each conv layer's activations change while the network learns. Torch-free interface.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cnnvis/core/progress.h"
#include "cnnvis/io/canvas.h"
#include "cnnvis/io/idx.h"

namespace cnnvis {

// Base seed of the evaluation canvases: fixed, independent of the training seed, so that every trained
// model is scored on the same images and `cnnvis canvases --split test` reproduces them.
constexpr std::uint64_t kTestCanvasSeed = 20240601;

// Base seed of the training canvases of one epoch: every epoch places, tints and clutters the items
// anew (free augmentation), and the stream differs from the test canvases' for every seed.
std::uint64_t train_canvas_seed(std::uint64_t seed, int epoch);

struct TrainOptions {
  std::string data_dir = kFashionMnistDir;
  // Defaults measured (docs/performance.md, "Training the demo model"): test accuracy 0.884 on all 10,000 test canvases
  // in 229 s on 2 quiet cores with bf16 steps (fp32: 0.883 in 312 s; 3 epochs with 15 % whole canvases
  // in fp32, the previous default: 0.873 in 230 s).
  int epochs = 4;
  std::uint64_t seed = 1;
  int batch_size = 32;           // 64 and 128 were no faster per canvas on 2 cores, and fewer steps learn less
  double learning_rate = 1e-2;   // peak AdamW rate; 1-epoch screens: 5e-3 0.787, 1e-2 0.808, 2e-2 0.801
  double label_smoothing = 0.1;  // share of the target spread over all classes (1-epoch screen: +0.8 points)
  CanvasOptions canvas;          // size 64 by default
  std::int64_t train_limit = 0;  // use only the first N training items (0 = all 60000)
  std::int64_t test_limit = 0;   // evaluate on the first N test items (0 = all 10000)
  std::string device = "cpu";    // resolved device string
  std::string watch_dir;         // non-empty: record the training movie here
  int watch_every = 50;          // steps between movie frames
  ProgressCallback progress;     // (step, total steps, "train")
  double weight_decay = 5e-4;    // decoupled (AdamW), on conv/linear weights only
  double warmup_fraction = 0.03; // linear learning-rate warm-up over this share of the steps, then cosine
  std::uint64_t test_canvas_seed = kTestCanvasSeed;
  int log_every = 25;            // steps per curve point
  // Progressive crops: the first steps train on crop_size x crop_size crops that contain the whole
  // item, growing in 8-pixel stages (32, 40, 48, 56) to the canvas size. The network is fully
  // convolutional with global pooling, so what it learns on crops carries over; a crop costs about
  // (crop / 64)^2 of a canvas and the item fills more of it, so early steps are cheap and informative.
  // The last full_canvas_fraction of the steps use whole canvases so that BatchNorm statistics and the
  // pooled features match the real input. crop_size 0 (or >= canvas size) trains on whole canvases.
  int crop_size = 32;
  double full_canvas_fraction = 0.1;
  // Arithmetic of the forward and backward passes: "fp32"; "bf16" (CPU autocast: convolutions and
  // matrix products in bfloat16 on fp32 master weights); "auto": bf16 on a CPU that computes it
  // natively (AVX512-BF16, about 2x faster per step), fp32 elsewhere and on CUDA. Evaluation always
  // runs in fp32, as users run the model.
  std::string precision = "auto";
};

struct TrainCurvePoint {
  std::int64_t step = 0;
  double epoch = 0;  // fractional
  double loss = 0;   // mean over the steps since the previous point
  double accuracy = 0;
};

struct TrainResult {
  std::vector<TrainCurvePoint> curve;
  std::vector<double> test_accuracy_per_epoch;
  double test_accuracy = 0;  // after the last epoch
  double seconds = 0;
  std::int64_t steps = 0;
  std::string weights_path;
  std::string card_path;
  std::vector<std::string> movie_files;  // frames, animations, curves (when watching)
  std::string precision;                  // the one used: fp32 or bf16
};

// Trains from scratch, deterministically for a given seed and device, and writes the weights
// (safetensors) and a model card (same path with .json) with the weights' sha256. Throws InputError when
// the data set is missing, OutputError when the outputs cannot be written.
TrainResult train_fashion_vgg(const TrainOptions& options, const std::string& weights_path);

// The side of the square input that step `step` of a `total_steps` run trains on: a crop while crops
// grow, then the canvas. A step's cost grows with its square, so progress displays weigh steps by it.
int train_step_side(const TrainOptions& options, std::int64_t step, std::int64_t total_steps);

}  // namespace cnnvis
