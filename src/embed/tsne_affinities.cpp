#include "cnnvis/embed/tsne_affinities.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "cnnvis/core/errors.h"
#include "cnnvis/core/parallel.h"

namespace cnnvis {

ConditionalAffinities perplexity_affinities(const KnnGraph& knn, double perplexity, int threads) {
  if (!(perplexity > 0)) throw UsageError("perplexity must be positive");
  threads = resolve_thread_count(threads);
  const int n = knn.rows, k = knn.k;
  ConditionalAffinities out;
  out.p.rows = n;
  out.p.row_ptr.resize(n + 1);
  for (int i = 0; i <= n; ++i) out.p.row_ptr[i] = static_cast<std::int64_t>(i) * k;
  out.p.cols = knn.indices;
  out.p.values.resize(static_cast<std::size_t>(n) * k);
  out.beta.resize(n);
  out.entropy.resize(n);
  const double target = std::log(perplexity);
  parallel_for(n, threads, [&](std::size_t begin, std::size_t end) {
    std::vector<double> shifted(k), prob(k);
    for (std::size_t i = begin; i < end; ++i) {
      const float* d = &knn.distances[i * k];
      const double d0 = d[0];
      for (int j = 0; j < k; ++j) shifted[j] = static_cast<double>(d[j]) - d0;
      double beta = 1.0, lo = 0.0, hi = std::numeric_limits<double>::infinity();
      double entropy = 0;
      for (int step = 0; step < 200; ++step) {
        double sum = 0, weighted = 0;
        for (int j = 0; j < k; ++j) {
          prob[j] = std::exp(-beta * shifted[j]);
          sum += prob[j];
          weighted += shifted[j] * prob[j];
        }
        entropy = std::log(sum) + beta * weighted / sum;
        const double diff = entropy - target;
        if (std::abs(diff) < 1e-5) break;
        if (diff > 0) {
          lo = beta;
          beta = std::isinf(hi) ? beta * 2 : 0.5 * (beta + hi);
        } else {
          hi = beta;
          beta = 0.5 * (beta + lo);
        }
      }
      double sum = 0;
      for (int j = 0; j < k; ++j) sum += prob[j];
      for (int j = 0; j < k; ++j) out.p.values[i * k + j] = prob[j] / sum;
      out.beta[i] = beta;
      out.entropy[i] = entropy;
    }
  });
  return out;
}

SparseMatrix symmetrize_affinities(const SparseMatrix& conditional) {
  const int n = conditional.rows;
  std::vector<std::int64_t> count(n + 1, 0);
  for (int i = 0; i < n; ++i) {
    for (std::int64_t e = conditional.row_ptr[i]; e < conditional.row_ptr[i + 1]; ++e) {
      ++count[i + 1];
      ++count[conditional.cols[e] + 1];
    }
  }
  for (int i = 0; i < n; ++i) count[i + 1] += count[i];
  std::vector<std::pair<int, double>> entries(count[n]);
  {
    std::vector<std::int64_t> fill(count.begin(), count.end() - 1);
    for (int i = 0; i < n; ++i) {
      for (std::int64_t e = conditional.row_ptr[i]; e < conditional.row_ptr[i + 1]; ++e) {
        const int j = conditional.cols[e];
        const double v = conditional.values[e];
        entries[fill[i]++] = {j, v};
        entries[fill[j]++] = {i, v};
      }
    }
  }
  const double scale = 1.0 / (2.0 * n);
  SparseMatrix out;
  out.rows = n;
  out.row_ptr.assign(n + 1, 0);
  std::vector<std::int64_t> kept(n, 0);
  for (int i = 0; i < n; ++i) {
    auto first = entries.begin() + count[i], last = entries.begin() + count[i + 1];
    // Stable so that the two halves of a pair are always added in the same order.
    std::stable_sort(first, last, [](const auto& a, const auto& b) { return a.first < b.first; });
    std::int64_t w = count[i];
    for (auto it = first; it != last; ++it) {
      if (w > count[i] && entries[w - 1].first == it->first) {
        entries[w - 1].second += it->second;
      } else {
        entries[w++] = *it;
      }
    }
    kept[i] = w - count[i];
    out.row_ptr[i + 1] = out.row_ptr[i] + kept[i];
  }
  out.cols.resize(out.row_ptr[n]);
  out.values.resize(out.row_ptr[n]);
  for (int i = 0; i < n; ++i) {
    for (std::int64_t e = 0; e < kept[i]; ++e) {
      out.cols[out.row_ptr[i] + e] = entries[count[i] + e].first;
      out.values[out.row_ptr[i] + e] = entries[count[i] + e].second * scale;
    }
  }
  return out;
}

}  // namespace cnnvis
