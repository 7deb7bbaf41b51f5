// Torch-free descriptions of a network's layers (for `cnnvis layers`, receptive-field crops, the CLI).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace cnnvis {

// Receptive-field geometry of one node's output relative to the network input.
// Tracked along one axis (the networks are square-symmetric); `extent` is the feature map's side there.
struct ReceptiveField {
  double size = 1;     // side of the input square that one output unit sees
  double stride = 1;   // input pixels between neighbouring output units ("jump")
  double start = 0.5;  // centre of output unit 0 in input pixel coordinates
  double extent = 224; // side of the current feature map in units (input: the image side)
  double image = 224;  // side of the network input
  // Input-pixel box [x0, x1) seen by the unit at (unit_x), clipped to the image.
  std::pair<double, double> span(int unit) const;
};

// The field after a window (convolution or pooling) of `kernel` with `stride` and `padding`, as PyTorch
// computes the output extent (ceil_mode: pooling's rounding up).
ReceptiveField window_field(const ReceptiveField& in, int kernel, int stride, int padding, bool ceil_mode);
// The field after adaptive pooling to output_size x output_size (PyTorch's uneven windows, the widest).
ReceptiveField adaptive_pool_field(const ReceptiveField& in, int output_size);

struct LayerInfo {
  std::string name;
  std::string type;
  std::string description;
  std::vector<std::int64_t> output_shape;  // without the batch dimension
  ReceptiveField field;
  int depth = 0;  // nesting depth (0 = top level)
  std::int64_t parameters = 0;  // own parameters, children excluded
};

}  // namespace cnnvis
