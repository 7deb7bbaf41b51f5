// Principal component analysis of a dense float matrix (rows = samples), torch-free.
#pragma once

#include <cstdint>
#include <vector>

namespace cnnvis {

struct PcaOptions {
  int components = 50;
  std::uint64_t seed = 0;  // randomized path only (D > exact_max_dims)
  int threads = 0;         // 0: all hardware threads; results do not depend on it
  int exact_max_dims = 128;  // up to this many input dimensions the covariance is diagonalised exactly
  int power_iterations = 3;  // randomized path (Halko, Martinsson & Tropp 2011)
  int oversampling = 10;
};

struct PcaResult {
  int rows = 0;
  int components = 0;                     // min(requested, rows, dims)
  std::vector<float> projection;          // rows x components, row-major: centred data times components
  std::vector<float> components_matrix;   // components x dims, row-major, unit rows
  std::vector<float> mean;                // dims
  std::vector<double> explained_variance;  // per component, divided by rows - 1
};

// data: rows x dims, row-major. Components are ordered by decreasing variance; each component's sign is
// fixed so that its entry of largest magnitude is positive (so the result is reproducible).
// Throws UsageError on empty input or components < 1.
PcaResult compute_pca(const float* data, int rows, int dims, const PcaOptions& options = {});

}  // namespace cnnvis
