#include "cnnvis/embed/tsne.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "cnnvis/core/errors.h"

namespace cnnvis {
namespace {

std::vector<float> gaussian_clusters(int clusters, int per_cluster, int dims, double separation, unsigned seed,
                                     std::vector<int>& labels) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<std::vector<double>> centres(clusters, std::vector<double>(dims));
  for (auto& c : centres) {
    for (auto& v : c) v = normal(gen) * separation;
  }
  std::vector<float> x;
  labels.clear();
  for (int i = 0; i < clusters * per_cluster; ++i) {
    const int c = i % clusters;  // interleaved, so the labels are not in blocks
    labels.push_back(c);
    for (int d = 0; d < dims; ++d) x.push_back(static_cast<float>(centres[c][d] + normal(gen)));
  }
  return x;
}

SparseMatrix affinities_of(const std::vector<float>& x, int n, int d, double perplexity, int k) {
  const KnnGraph knn = exact_knn(x.data(), n, d, k, 2);
  return symmetrize_affinities(perplexity_affinities(knn, perplexity, 2).p);
}

TEST(Affinities, PerplexityCalibrationHitsTheTarget) {
  std::vector<int> labels;
  const auto x = gaussian_clusters(3, 200, 10, 4.0, 5, labels);
  const int n = 600, k = 90;
  const KnnGraph knn = exact_knn(x.data(), n, 10, k, 2);
  const ConditionalAffinities c = perplexity_affinities(knn, 30.0, 2);
  for (int i = 0; i < n; ++i) {
    double sum = 0, entropy = 0;
    for (int j = 0; j < k; ++j) {
      const double p = c.p.values[i * k + j];
      sum += p;
      if (p > 0) entropy -= p * std::log(p);
      if (j > 0) EXPECT_LE(p, c.p.values[i * k + j - 1] * (1 + 1e-12));  // nearer is likelier
    }
    EXPECT_NEAR(sum, 1.0, 1e-12);
    EXPECT_NEAR(std::exp(entropy), 30.0, 30.0 * 1e-4) << "row " << i;
    EXPECT_GT(c.beta[i], 0.0);
  }
}

TEST(Affinities, SymmetrisedMatrixIsSymmetricAndSumsToOne) {
  std::vector<int> labels;
  const auto x = gaussian_clusters(2, 100, 5, 3.0, 9, labels);
  const int n = 200, k = 30;
  const KnnGraph knn = exact_knn(x.data(), n, 5, k, 1);
  const ConditionalAffinities c = perplexity_affinities(knn, 10.0, 1);
  const SparseMatrix p = symmetrize_affinities(c.p);
  std::map<std::pair<int, int>, double> dense, cond;
  double total = 0;
  for (int i = 0; i < n; ++i) {
    for (auto e = p.row_ptr[i]; e < p.row_ptr[i + 1]; ++e) {
      if (e > p.row_ptr[i]) EXPECT_LT(p.cols[e - 1], p.cols[e]);  // sorted, no duplicates
      dense[{i, p.cols[e]}] = p.values[e];
      total += p.values[e];
    }
    for (int j = 0; j < k; ++j) cond[{i, knn.indices[i * k + j]}] = c.p.values[i * k + j];
  }
  EXPECT_NEAR(total, 1.0, 1e-12);
  for (const auto& [ij, v] : dense) {
    EXPECT_DOUBLE_EQ(v, dense.at({ij.second, ij.first}));
    const double expected = ((cond.count(ij) ? cond.at(ij) : 0.0) +
                             (cond.count({ij.second, ij.first}) ? cond.at({ij.second, ij.first}) : 0.0)) / (2.0 * n);
    EXPECT_NEAR(v, expected, 1e-15);
  }
}

std::vector<double> random_layout(int n, double scale, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> normal(0.0, scale);
  std::vector<double> y(2 * n);
  for (auto& v : y) v = normal(gen);
  return y;
}

double kl_at(const SparseMatrix& p, const std::vector<double>& y) {
  std::vector<double> g;
  double kl = 0;
  tsne_gradient(p, y, 1.0, TsneMethod::exact, {}, 1, g, &kl);
  return kl;
}

TEST(TsneGradient, ExactGradientMatchesFiniteDifferencesOfKl) {
  std::vector<int> labels;
  const int n = 14;
  const auto x = gaussian_clusters(2, 7, 4, 2.0, 21, labels);
  const SparseMatrix p = affinities_of(x, n, 4, 3.0, n - 1);
  auto y = random_layout(n, 1.0, 4);
  std::vector<double> g;
  tsne_gradient(p, y, 1.0, TsneMethod::exact, {}, 2, g);
  const double h = 1e-6;
  for (int c = 0; c < 2 * n; ++c) {
    auto plus = y, minus = y;
    plus[c] += h;
    minus[c] -= h;
    const double numeric = (kl_at(p, plus) - kl_at(p, minus)) / (2 * h);
    // tsne_gradient is in bhtsne units: dKL/dy / 4.
    EXPECT_NEAR(4.0 * g[c], numeric, 1e-6 + 1e-5 * std::abs(numeric)) << "coordinate " << c;
  }
}

TEST(TsneGradient, ExaggerationScalesOnlyTheAttraction) {
  std::vector<int> labels;
  const int n = 30;
  const auto x = gaussian_clusters(3, 10, 4, 2.0, 2, labels);
  const SparseMatrix p = affinities_of(x, n, 4, 5.0, 15);
  const auto y = random_layout(n, 2.0, 8);
  std::vector<double> g1, g2, g3;
  tsne_gradient(p, y, 1.0, TsneMethod::exact, {}, 1, g1);
  tsne_gradient(p, y, 2.0, TsneMethod::exact, {}, 1, g2);
  tsne_gradient(p, y, 3.0, TsneMethod::exact, {}, 1, g3);
  for (int c = 0; c < 2 * n; ++c) EXPECT_NEAR(g3[c] - g2[c], g2[c] - g1[c], 1e-12);
}

double relative_error(const std::vector<double>& reference, const std::vector<double>& approx) {
  double diff = 0, norm = 0;
  for (std::size_t c = 0; c < reference.size(); ++c) {
    diff += (reference[c] - approx[c]) * (reference[c] - approx[c]);
    norm += reference[c] * reference[c];
  }
  return std::sqrt(diff / norm);
}

TEST(TsneGradient, FftInterpolationIsCloseToExactAndConverges) {
  std::vector<int> labels;
  const int n = 1500;
  const auto x = gaussian_clusters(5, 300, 10, 3.0, 13, labels);
  const SparseMatrix p = affinities_of(x, n, 10, 30.0, 90);
  FftRepulsionOptions fine;
  fine.interpolation_points = 5;
  fine.nodes_per_unit = 5.0;
  // Measured with the defaults (3-point stencils, 3 nodes per unit): 3e-6, 2.5e-3 and 2.3e-2 relative
  // error at these scales (FIt-SNE's box-local 3-point interpolation at the same grid density: 3e-5,
  // 5e-3, 4e-2). The error is the near-field interpolation of the kernel, so it is largest when points
  // are sparse (scale 30) and shrinks with wider stencils and finer grids (5 points, 5 nodes per unit:
  // 2e-7, 4e-4, 8e-4).
  const double default_tolerance[] = {1e-5, 5e-3, 4e-2};
  const double scales[] = {0.5, 5.0, 30.0};
  for (int s = 0; s < 3; ++s) {
    const auto y = random_layout(n, scales[s], 17);
    std::vector<double> exact, fft, fft_fine;
    double kl_exact = 0, kl_fft = 0;
    tsne_gradient(p, y, 1.0, TsneMethod::exact, {}, 2, exact, &kl_exact);
    tsne_gradient(p, y, 1.0, TsneMethod::fft, {}, 2, fft, &kl_fft);
    tsne_gradient(p, y, 1.0, TsneMethod::fft, fine, 2, fft_fine);
    const double err = relative_error(exact, fft), err_fine = relative_error(exact, fft_fine);
    EXPECT_LT(err, default_tolerance[s]) << "layout scale " << scales[s];
    EXPECT_LT(err_fine, 2e-3) << "layout scale " << scales[s];
    EXPECT_LT(err_fine, err) << "layout scale " << scales[s];
    EXPECT_NEAR(kl_fft, kl_exact, 2e-3 * kl_exact) << "layout scale " << scales[s];
  }
}

TEST(TsneGradient, FftGradientDoesNotDependOnEarlierCallsOrTheThreadCount) {
  // The kernel spectra are kept between calls while the grid stays the same; a call on another layout
  // (another grid) in between must not change the result, and neither must the number of threads.
  std::vector<int> labels;
  const int n = 1200;
  const auto x = gaussian_clusters(4, 300, 10, 3.0, 21, labels);
  const SparseMatrix p = affinities_of(x, n, 10, 30.0, 90);
  const auto y_a = random_layout(n, 20.0, 3), y_b = random_layout(n, 2.0, 4);
  std::vector<double> first, other, again, threaded;
  double kl_first = 0, kl_again = 0;
  tsne_gradient(p, y_a, 1.0, TsneMethod::fft, {}, 1, first, &kl_first);
  tsne_gradient(p, y_b, 1.0, TsneMethod::fft, {}, 1, other);
  tsne_gradient(p, y_a, 1.0, TsneMethod::fft, {}, 1, again, &kl_again);
  tsne_gradient(p, y_a, 1.0, TsneMethod::fft, {}, 3, threaded);
  EXPECT_EQ(first, again);
  EXPECT_EQ(kl_first, kl_again);
  EXPECT_EQ(first, threaded);
  EXPECT_NE(first, other);
}

// Share of points whose nearest 2-D neighbour has the same label.
double one_nn_accuracy(const std::vector<float>& y, const std::vector<int>& labels) {
  const int n = static_cast<int>(labels.size());
  int hits = 0;
  for (int i = 0; i < n; ++i) {
    double best = std::numeric_limits<double>::infinity();
    int best_j = -1;
    for (int j = 0; j < n; ++j) {
      if (j == i) continue;
      const double d = std::pow(y[2 * i] - y[2 * j], 2) + std::pow(y[2 * i + 1] - y[2 * j + 1], 2);
      if (d < best) best = d, best_j = j;
    }
    hits += labels[best_j] == labels[i];
  }
  return static_cast<double>(hits) / n;
}

// Smallest distance between cluster centroids over the largest within-cluster RMS radius.
double separation_ratio(const std::vector<float>& y, const std::vector<int>& labels, int clusters) {
  std::vector<double> cx(clusters), cy(clusters), count(clusters), radius(clusters);
  for (std::size_t i = 0; i < labels.size(); ++i) {
    cx[labels[i]] += y[2 * i];
    cy[labels[i]] += y[2 * i + 1];
    ++count[labels[i]];
  }
  for (int c = 0; c < clusters; ++c) cx[c] /= count[c], cy[c] /= count[c];
  for (std::size_t i = 0; i < labels.size(); ++i) {
    radius[labels[i]] += std::pow(y[2 * i] - cx[labels[i]], 2) + std::pow(y[2 * i + 1] - cy[labels[i]], 2);
  }
  double max_radius = 0, min_gap = std::numeric_limits<double>::infinity();
  for (int c = 0; c < clusters; ++c) {
    max_radius = std::max(max_radius, std::sqrt(radius[c] / count[c]));
    for (int e = c + 1; e < clusters; ++e) min_gap = std::min(min_gap, std::hypot(cx[c] - cx[e], cy[c] - cy[e]));
  }
  return min_gap / max_radius;
}

TEST(Tsne, KnownClustersSeparateWithExactAndFftRepulsion) {
  std::vector<int> labels;
  const int clusters = 5, per = 120, dims = 30;
  const auto x = gaussian_clusters(clusters, per, dims, 2.0, 31, labels);
  for (TsneMethod method : {TsneMethod::exact, TsneMethod::fft}) {
    TsneOptions options;
    options.method = method;
    options.iterations = 500;
    options.threads = 2;
    const TsneResult r = run_tsne(x.data(), clusters * per, dims, options);
    EXPECT_EQ(r.method, method);
    EXPECT_DOUBLE_EQ(r.learning_rate, 200.0);
    EXPECT_EQ(one_nn_accuracy(r.coordinates, labels), 1.0) << tsne_method_name(method);
    EXPECT_GT(separation_ratio(r.coordinates, labels, clusters), 3.0) << tsne_method_name(method);
    ASSERT_GE(r.kl_history.size(), 2u);
    EXPECT_LT(r.kl_history.back().second, r.kl_history[4].second);  // KL falls after the exaggeration
  }
}

TEST(Tsne, SameSeedGivesIdenticalCoordinatesWhateverTheThreadCount) {
  std::vector<int> labels;
  const int n = 1200;
  const auto x = gaussian_clusters(6, 200, 60, 1.5, 41, labels);  // 60 dims: PCA to 50 runs too
  TsneOptions options;
  options.iterations = 200;
  options.method = TsneMethod::fft;
  options.threads = 1;
  const TsneResult a = run_tsne(x.data(), n, 60, options);
  options.threads = 3;
  const TsneResult b = run_tsne(x.data(), n, 60, options);
  EXPECT_EQ(a.reduced_dims, 50);
  EXPECT_EQ(a.coordinates, b.coordinates);
  options.init = "random";
  options.iterations = 20;
  const TsneResult c = run_tsne(x.data(), n, 60, options);
  options.seed = 7;
  const TsneResult d = run_tsne(x.data(), n, 60, options);
  EXPECT_NE(c.coordinates, d.coordinates);
}

TEST(Tsne, TooFewPointsLowersThePerplexityAndBadInputThrows) {
  std::vector<int> labels;
  const auto x = gaussian_clusters(2, 10, 3, 5.0, 1, labels);
  TsneOptions options;
  options.iterations = 50;
  const TsneResult r = run_tsne(x.data(), 20, 3, options);
  EXPECT_NEAR(r.perplexity, 19.0 / 3.0, 1e-12);
  EXPECT_EQ(r.neighbours, 19);
  EXPECT_THROW(run_tsne(x.data(), 3, 3, options), UsageError);
  auto bad = x;
  bad[7] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(run_tsne(bad.data(), 20, 3, options), UsageError);
  options.method = TsneMethod::fft;
  options.fft.interpolation_points = 0;
  EXPECT_THROW(run_tsne(x.data(), 20, 3, options), UsageError);
  options.fft = {};
  options.fft.max_nodes = 10;  // below min_nodes
  EXPECT_THROW(run_tsne(x.data(), 20, 3, options), UsageError);
}

TEST(TsneGradient, FftGridStaysBoundedOnAHugeLayout) {
  // A diverged layout (extent ~1e6) must not ask for a grid of millions of nodes: max_nodes caps it.
  std::vector<int> labels;
  const int n = 400;
  const auto x = gaussian_clusters(2, 200, 5, 3.0, 2, labels);
  const SparseMatrix p = affinities_of(x, n, 5, 30.0, 90);
  const auto y = random_layout(n, 2e5, 9);
  std::vector<double> g;
  double kl = 0;
  tsne_gradient(p, y, 1.0, TsneMethod::fft, {}, 2, g, &kl);
  for (double v : g) ASSERT_TRUE(std::isfinite(v));
  EXPECT_TRUE(std::isfinite(kl));
}

}  // namespace
}  // namespace cnnvis
