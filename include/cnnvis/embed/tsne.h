// t-SNE (van der Maaten & Hinton 2008) written for the project: no Python, no LibTorch.
//
// Pipeline: optional PCA to `pca_dims` -> exact k nearest neighbours (k = 3 * perplexity + 1) -> Gaussian
// conditional affinities calibrated to the perplexity by binary search -> symmetric sparse P ->
// gradient descent with momentum and per-coordinate gains (delta-bar-delta), early exaggeration.
// Repulsion is exact (O(N^2)) for small N and FFT-interpolated for large N (after FIt-SNE, Linderman
// et al. 2019: Lagrange interpolation onto an equispaced grid, the kernel convolution done by FFT; here
// with stencils centred on each point, one charge under two force kernels, and the normaliser from
// Parseval's theorem), so each iteration costs O(N + grid log grid).
//
// Reproducible: the same data, options and seed give bit-identical coordinates whatever the number of
// threads (every value is computed by one thread in a fixed order; sums over points are serial).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cnnvis/embed/tsne_affinities.h"
#include "cnnvis/embed/tsne_repulsion.h"

namespace cnnvis {

enum class TsneMethod { automatic, exact, fft };
TsneMethod parse_tsne_method(const std::string& text);  // "auto" | "exact" | "fft"; UsageError otherwise
const char* tsne_method_name(TsneMethod method);


// Gradient of KL(P || Q) for a 2-D embedding y (n x 2, row-major) in bhtsne units, i.e. dKL/dy / 4,
// with the attractive term multiplied by `exaggeration`. method must be exact or fft. When kl is not
// null it receives KL(P || Q) (P without exaggeration).
void tsne_gradient(const SparseMatrix& p, const std::vector<double>& y, double exaggeration, TsneMethod method,
                   const FftRepulsionOptions& fft, int threads, std::vector<double>& gradient,
                   double* kl = nullptr);

struct TsneProgress {
  int iteration = 0;     // 1-based, of `iterations`
  int iterations = 0;
  double kl = -1;        // KL divergence at this iteration when it was computed, else -1
  double elapsed_s = 0;  // since the optimisation started
};

struct TsneOptions {
  double perplexity = 30;          // lowered (with a warning) when there are too few points
  int iterations = 1000;           // in total, exaggeration phase included
  int exaggeration_iterations = 250;
  double early_exaggeration = 12;
  double late_exaggeration = 1;
  double learning_rate = 0;        // 0: max(200, N / early_exaggeration) (bhtsne units)
  double momentum = 0.5;           // during early exaggeration
  double final_momentum = 0.8;     // afterwards
  double min_gain = 0.01;
  std::string init = "pca";        // "pca": first two PCs scaled to std 1e-4; "random": N(0, 1e-4^2)
  int pca_dims = 50;               // reduce inputs with more dimensions to this many PCs first; 0: never
  TsneMethod method = TsneMethod::automatic;
  int exact_max_points = 1000;     // automatic: exact repulsion up to this many points, FFT above
  FftRepulsionOptions fft;
  std::uint64_t seed = 42;
  int threads = 0;                 // 0: all hardware threads; the result does not depend on it
  int kl_every = 50;               // compute and report KL every this many iterations (0: never)
  std::function<void(const TsneProgress&)> progress;  // called every iteration
};

struct TsneResult {
  int rows = 0;
  std::vector<float> coordinates;  // rows x 2, row-major, centred
  TsneMethod method = TsneMethod::exact;
  double perplexity = 0;           // the one used
  double learning_rate = 0;        // the one used
  int neighbours = 0;              // k of the kNN graph
  int input_dims = 0, reduced_dims = 0;
  double kl = -1;                  // final KL(P || Q)
  std::vector<std::pair<int, double>> kl_history;
  double pca_s = 0, knn_s = 0, affinities_s = 0, optimise_s = 0;
};

// data: rows x dims float, row-major. Throws UsageError for fewer than 4 rows, non-finite values or bad
// options.
TsneResult run_tsne(const float* data, int rows, int dims, const TsneOptions& options = {});

}  // namespace cnnvis
