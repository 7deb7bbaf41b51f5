// t-SNE's input side: conditional Gaussian affinities over each point's k nearest neighbours, calibrated
// to a perplexity, and their symmetrisation into the joint distribution P (sparse).
#pragma once

#include <cstdint>
#include <vector>

#include "cnnvis/embed/knn.h"

namespace cnnvis {

// Compressed sparse rows with double values; columns sorted within each row.
struct SparseMatrix {
  int rows = 0;
  std::vector<std::int64_t> row_ptr;  // rows + 1
  std::vector<int> cols;
  std::vector<double> values;
};

struct ConditionalAffinities {
  SparseMatrix p;             // p_{j|i}: row i has i's k neighbours in kNN order, each row sums to 1
  std::vector<double> beta;   // 1 / (2 sigma_i^2) per row, on squared distances
  std::vector<double> entropy;  // achieved entropy (nats) per row; target log(perplexity)
};

// Binary search per point for the Gaussian precision whose conditional distribution over the point's
// neighbours has the given perplexity (tolerance 1e-5 nats on the entropy, at most 200 steps).
ConditionalAffinities perplexity_affinities(const KnnGraph& knn, double perplexity, int threads = 0);

// P = (P_cond + P_cond^T) / (2 N): symmetric, sums to 1.
SparseMatrix symmetrize_affinities(const SparseMatrix& conditional);

}  // namespace cnnvis
