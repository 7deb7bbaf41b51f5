// Exact k nearest neighbours (squared Euclidean) of every row of a dense float matrix.
#pragma once

#include <vector>

namespace cnnvis {

struct KnnGraph {
  int rows = 0;
  int k = 0;
  std::vector<int> indices;       // rows x k, nearest first; a row never lists itself
  std::vector<float> distances;   // rows x k squared Euclidean distances, ascending
};

// Brute force in cache-sized blocks (the dot products are the cost: rows^2 * dims multiply-adds, which
// vectorise well), then each candidate list is re-ranked with distances recomputed in double. Ties are
// broken by the smaller index, so the result does not depend on `threads` (0: all hardware threads).
// Throws UsageError when k < 1 or k >= rows.
KnnGraph exact_knn(const float* data, int rows, int dims, int k, int threads = 0);

}  // namespace cnnvis
