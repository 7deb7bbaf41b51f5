// The training data pipeline of train_fashion_vgg (train.cpp): Fashion-MNIST canvases rendered into
// batches (whole or cropped around the item), their normalisation, the growing crop schedule, and the
// test items the training movie shows. Internal to the training code.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include "cnnvis/io/canvas.h"
#include "cnnvis/io/idx.h"
#include "cnnvis/io/model_card.h"
#include "cnnvis/methods/train.h"
#include "cnnvis/methods/training_movie.h"

namespace cnnvis::train_data {

// Renders canvases for split items `indices` into an N x S x S x 3 uint8 tensor (and their labels),
// where S is the canvas size, or crop when 0 < crop < size: then each image is a crop of its canvas
// that contains the whole item, at a position drawn from the canvas seed and index (deterministic).
// Canvases are independent of each other, so they are drawn in parallel without affecting the result.
void render_canvases(const FashionMnistSplit& split, const std::int64_t* indices, std::int64_t count,
                     std::uint64_t seed, const CanvasOptions& canvas, int crop, at::Tensor& pixels,
                     at::Tensor& labels);

// uint8 N x H x W x 3 RGB -> normalised float N x 3 x H x W on the device, as images_to_tensor does
// for float images: (v / 255 * range - mean) / std per channel.
struct Normaliser {
  at::Tensor scale, shift;  // 1 x 3 x 1 x 1
  Normaliser(const ModelCard& card, const at::Device& device);
  at::Tensor operator()(const at::Tensor& pixels) const;
};

// Input side for a step: crop_size, growing by 8 pixels per equal share of the first crop_steps
// steps; the whole canvas (0) from crop_steps on.
int crop_at(const TrainOptions& o, std::int64_t step, std::int64_t crop_steps);

// Test items shown in the movie: the first test canvas of each class (full test set, so that a small
// --test-limit still gives ten columns).
std::vector<MovieSample> movie_samples(const FashionMnistSplit& test, std::uint64_t seed, const CanvasOptions& canvas);

}  // namespace cnnvis::train_data
