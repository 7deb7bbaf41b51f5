// t-SNE's repulsive term for a 2-D embedding: the exact O(N^2) sum, and its FFT-interpolated
// approximation (after FIt-SNE; the scheme is described in src/embed/tsne_repulsion.cpp). Both compute
// every value in one thread in a fixed order, so the result does not depend on the thread count.
#pragma once

#include <vector>

namespace cnnvis {

struct FftRepulsionOptions {
  int interpolation_points = 3;  // Lagrange stencil per dimension: this many grid nodes nearest the point
  double nodes_per_unit = 3.0;   // grid nodes per unit of embedding extent
  int min_nodes = 150;           // grid nodes across the layout at least
  int max_nodes = 2048;          // and at most (coarser beyond: the grids take about 85 bytes per node^2)
};

// y: n x 2 (row-major). rep receives the unnormalised repulsion sum_j K2(y_i, y_j) (y_i - y_j) per point
// (n x 2), with K(a, b) = 1 / (1 + |a - b|^2) and K2 its square; returns Z = sum_{i != j} K(y_i, y_j).
double exact_repulsion(const std::vector<double>& y, int threads, std::vector<double>& rep);

// The same by interpolation onto a grid and FFT convolution, in O(N + grid log grid). UsageError on
// options out of range. Plans and kernel spectra are cached per thread between calls.
double fft_repulsion(const std::vector<double>& y, const FftRepulsionOptions& options, int threads,
                     std::vector<double>& rep);

}  // namespace cnnvis
