#include "cnnvis/embed/pca.h"

#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace cnnvis {
namespace {

// Data with a known spectrum: independent Gaussian coordinates with decreasing scales, rotated by a
// random orthogonal matrix (built by Gram-Schmidt) and shifted.
std::vector<float> known_spectrum_data(int n, int d, std::vector<double>& variances, std::vector<std::vector<double>>& axes) {
  std::mt19937 gen(11);
  std::normal_distribution<double> normal(0.0, 1.0);
  axes.assign(d, std::vector<double>(d));
  for (int a = 0; a < d; ++a) {
    for (auto& v : axes[a]) v = normal(gen);
    for (int b = 0; b < a; ++b) {
      double dot = 0;
      for (int c = 0; c < d; ++c) dot += axes[a][c] * axes[b][c];
      for (int c = 0; c < d; ++c) axes[a][c] -= dot * axes[b][c];
    }
    double norm = 0;
    for (double v : axes[a]) norm += v * v;
    for (auto& v : axes[a]) v /= std::sqrt(norm);
  }
  variances.resize(d);
  for (int a = 0; a < d; ++a) variances[a] = std::pow(0.8, a) * 10.0;
  std::vector<float> x(static_cast<std::size_t>(n) * d);
  for (int i = 0; i < n; ++i) {
    std::vector<double> row(d, 5.0);  // offset: PCA must centre
    for (int a = 0; a < d; ++a) {
      const double s = normal(gen) * std::sqrt(variances[a]);
      for (int c = 0; c < d; ++c) row[c] += s * axes[a][c];
    }
    for (int c = 0; c < d; ++c) x[static_cast<std::size_t>(i) * d + c] = static_cast<float>(row[c]);
  }
  return x;
}

void check_pca(int d, int components) {
  const int n = 4000;
  std::vector<double> variances;
  std::vector<std::vector<double>> axes;
  const auto x = known_spectrum_data(n, d, variances, axes);
  PcaOptions options;
  options.components = components;
  const PcaResult r = compute_pca(x.data(), n, d, options);
  ASSERT_EQ(r.components, components);
  for (int c = 0; c < 5; ++c) {
    EXPECT_NEAR(r.explained_variance[c], variances[c], 0.08 * variances[c]) << "component " << c;
    double dot = 0;
    for (int j = 0; j < d; ++j) dot += r.components_matrix[c * d + j] * axes[c][j];
    EXPECT_GT(std::abs(dot), 0.97) << "component " << c;
  }
  // Projections are the centred data times the components: their variance is the explained variance.
  for (int c = 0; c < 3; ++c) {
    double mean = 0, sq = 0;
    for (int i = 0; i < n; ++i) mean += r.projection[i * components + c];
    mean /= n;
    for (int i = 0; i < n; ++i) sq += std::pow(r.projection[i * components + c] - mean, 2);
    EXPECT_NEAR(mean, 0.0, 1e-3);
    EXPECT_NEAR(sq / (n - 1), r.explained_variance[c], 1e-3 * r.explained_variance[c]);
  }
  // Reproducible and independent of the thread count.
  options.threads = 1;
  const PcaResult a = compute_pca(x.data(), n, d, options);
  options.threads = 3;
  const PcaResult b = compute_pca(x.data(), n, d, options);
  EXPECT_EQ(a.projection, b.projection);
}

TEST(Pca, ExactPathRecoversKnownSpectrum) { check_pca(40, 10); }
TEST(Pca, RandomizedPathRecoversKnownSpectrum) { check_pca(300, 10); }

}  // namespace
}  // namespace cnnvis
