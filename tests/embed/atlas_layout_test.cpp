// Activation-atlas geometry: percentiles as numpy computes them, Lucid's layout normalisation, grid
// binning and averaging on synthetic layouts, and the whitening matrix.
#include <cmath>
#include <numeric>
#include <random>

#include <gtest/gtest.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/embed/atlas_layout.h"

namespace cnnvis {
namespace {

TEST(AtlasLayout, PercentileInterpolatesLikeNumpy) {
  // numpy.percentile([1, 2, 3, 4], q) = 1.03, 2.5, 3.97 for q = 1, 50, 99.
  EXPECT_NEAR(percentile({4, 1, 3, 2}, 1), 1.03, 1e-12);
  EXPECT_NEAR(percentile({4, 1, 3, 2}, 50), 2.5, 1e-12);
  EXPECT_NEAR(percentile({4, 1, 3, 2}, 99), 3.97, 1e-12);
  EXPECT_EQ(percentile({7}, 30), 7);
  EXPECT_THROW(percentile({}, 50), UsageError);
}

TEST(AtlasLayout, NormalizationClipsOutliersToTheBorder) {
  // 101 points on x = 0..100 plus one far outlier; y constant.
  std::vector<float> xy;
  for (int i = 0; i <= 100; ++i) xy.insert(xy.end(), {static_cast<float>(i), 5.0f});
  xy.insert(xy.end(), {100000.0f, 5.0f});
  const std::vector<float> n = normalize_atlas_layout(xy, 1, 99, 0.1);
  ASSERT_EQ(n.size(), xy.size());
  for (float v : n) {
    EXPECT_GE(v, 0.0f);
    EXPECT_LE(v, 1.0f);
  }
  // The outlier is clipped to the high bound, so it lands on 1 and does not squeeze the others.
  EXPECT_FLOAT_EQ(n[2 * 101], 1.0f);
  EXPECT_FLOAT_EQ(n[0], 0.0f);
  // The 99th percentile of the 102 values lies at 100 - tiny; +10% of the range: the point at x = 50 ends
  // close to the middle of the widened range, not near 0 as min-max scaling with the outlier would put it.
  EXPECT_GT(n[2 * 50], 0.4f);
  EXPECT_LT(n[2 * 50], 0.6f);
  // A constant axis maps to the middle.
  EXPECT_FLOAT_EQ(n[1], 0.5f);
}

TEST(AtlasLayout, BinningPutsEverySampleInOneCellAndAverages) {
  // Samples at known places on a 4 x 4 grid, 2 channels, 3 classes of attribution (k = 2 per sample).
  const std::vector<float> xy = {0.10f, 0.10f,   // cell (0, 0)
                                 0.20f, 0.05f,   // cell (0, 0)
                                 1.00f, 1.00f,   // x = 1 lands in the last cell (3, 3)
                                 0.80f, 0.99f,   // cell (3, 3)
                                 0.50f, 0.25f,   // cell (2, 1): exactly on a boundary -> the upper cell
                                 0.26f, 0.74f};  // cell (1, 2)
  const std::vector<float> act = {1, 2, 3, 4, 10, 0, 20, 0, 5, 5, 7, 9};
  const std::vector<std::int64_t> cls = {0, 1, 0, 1, 2, 1, 2, 0, 1, 2, 0, 2};
  const std::vector<float> val = {1.0f, 0.5f, 3.0f, -1.0f, 4.0f, 1.0f, 2.0f, 0.0f, 1.0f, 1.0f, 0.2f, 0.1f};
  AtlasBinningOptions o;
  o.grid = 4;
  o.min_count = 1;
  o.top_classes = 2;
  const auto cells = bin_atlas_cells(xy, act, 2, cls, val, 2, o);
  ASSERT_EQ(cells.size(), 4u);
  std::int64_t total = 0;
  for (const auto& c : cells) total += c.count;
  EXPECT_EQ(total, 6);
  // Row-major order: (row 0, col 0), (row 1, col 2), (row 2, col 1), (row 3, col 3).
  EXPECT_EQ(cells[0].column, 0);
  EXPECT_EQ(cells[0].row, 0);
  EXPECT_EQ(cells[0].count, 2);
  EXPECT_FLOAT_EQ(cells[0].mean_activation[0], 2.0f);
  EXPECT_FLOAT_EQ(cells[0].mean_activation[1], 3.0f);
  EXPECT_FLOAT_EQ(cells[0].x, 0.15f);
  // Class 0: (1 + 3) / 2 = 2; class 1: (0.5 - 1) / 2 = -0.25.
  ASSERT_EQ(cells[0].top_classes.size(), 2u);
  EXPECT_EQ(cells[0].top_classes[0].first, 0);
  EXPECT_FLOAT_EQ(cells[0].top_classes[0].second, 2.0f);
  EXPECT_EQ(cells[0].top_classes[1].first, 1);
  EXPECT_FLOAT_EQ(cells[0].top_classes[1].second, -0.25f);
  EXPECT_EQ(cells[1].column, 2);
  EXPECT_EQ(cells[1].row, 1);
  EXPECT_EQ(cells[2].column, 1);
  EXPECT_EQ(cells[2].row, 2);
  EXPECT_EQ(cells[3].column, 3);
  EXPECT_EQ(cells[3].row, 3);
  EXPECT_EQ(cells[3].members, (std::vector<std::int64_t>{2, 3}));
  EXPECT_FLOAT_EQ(cells[3].mean_activation[0], 15.0f);
  // Class 2: (4 + 2) / 2 = 3 on top; class 1 (1 / 2) and class 0 (0 / 2) compete for second.
  EXPECT_EQ(cells[3].top_classes[0].first, 2);
  EXPECT_FLOAT_EQ(cells[3].top_classes[0].second, 3.0f);
  EXPECT_EQ(cells[3].top_classes[1].first, 1);

  // min_count drops the single-sample cells.
  o.min_count = 2;
  const auto dense = bin_atlas_cells(xy, act, 2, cls, val, 2, o);
  ASSERT_EQ(dense.size(), 2u);
  EXPECT_EQ(dense[0].count, 2);
  EXPECT_EQ(dense[1].count, 2);
  // No attribution at all: no classes.
  const auto plain = bin_atlas_cells(xy, act, 2, {}, {}, 0, o);
  EXPECT_TRUE(plain[0].top_classes.empty());
  EXPECT_THROW(bin_atlas_cells(xy, act, 3, {}, {}, 0, o), UsageError);
}

TEST(AtlasLayout, BinningRecoversClustersOfASyntheticLayout) {
  // Four clusters at the centres of the quadrants of a 2 x 2 grid, each with its own activation.
  std::mt19937 rng(3);
  std::normal_distribution<float> jitter(0.0f, 0.05f);
  std::vector<float> xy, act;
  const float centres[4][2] = {{0.25f, 0.25f}, {0.75f, 0.25f}, {0.25f, 0.75f}, {0.75f, 0.75f}};
  for (int c = 0; c < 4; ++c) {
    for (int i = 0; i < 50; ++i) {
      xy.push_back(std::clamp(centres[c][0] + jitter(rng), 0.0f, 1.0f));
      xy.push_back(std::clamp(centres[c][1] + jitter(rng), 0.0f, 1.0f));
      for (int j = 0; j < 4; ++j) act.push_back(j == c ? 1.0f : 0.0f);
    }
  }
  AtlasBinningOptions o;
  o.grid = 2;
  const auto cells = bin_atlas_cells(xy, act, 4, {}, {}, 0, o);
  ASSERT_EQ(cells.size(), 4u);
  for (int c = 0; c < 4; ++c) {
    EXPECT_EQ(cells[c].count, 50);
    for (int j = 0; j < 4; ++j) EXPECT_FLOAT_EQ(cells[c].mean_activation[j], j == c ? 1.0f : 0.0f);
  }
}

TEST(AtlasLayout, WhiteningInvertsTheCorrelation) {
  // Correlated 3-channel data: S (A^T A / n) = I up to the small ridge.
  std::mt19937 rng(7);
  std::normal_distribution<float> g(0.0f, 1.0f);
  const int n = 2000, c = 3;
  std::vector<float> a;
  for (int i = 0; i < n; ++i) {
    const float u = g(rng), v = g(rng), w = g(rng);
    a.insert(a.end(), {u, 0.8f * u + 0.2f * v, 2.0f * w + 0.5f * u});
  }
  const std::vector<float> s = atlas_whitening_matrix(a, c, 1e-6);
  std::vector<double> corr(c * c, 0.0);
  for (int i = 0; i < n; ++i)
    for (int p = 0; p < c; ++p)
      for (int q = 0; q < c; ++q) corr[p * c + q] += static_cast<double>(a[i * c + p]) * a[i * c + q] / n;
  for (int p = 0; p < c; ++p) {
    for (int q = 0; q < c; ++q) {
      double prod = 0;
      for (int r = 0; r < c; ++r) prod += s[p * c + r] * corr[r * c + q];
      EXPECT_NEAR(prod, p == q ? 1.0 : 0.0, 1e-3) << p << "," << q;
    }
  }
  // A dead channel (always 0) keeps S finite thanks to the ridge.
  std::vector<float> dead;
  for (int i = 0; i < n; ++i) dead.insert(dead.end(), {a[i * c], 0.0f});
  for (float v : atlas_whitening_matrix(dead, 2)) EXPECT_TRUE(std::isfinite(v));
  // v * S
  const std::vector<float> mapped = apply_whitening({1.0f, 0.0f, 0.0f}, s);
  for (int q = 0; q < c; ++q) EXPECT_FLOAT_EQ(mapped[q], s[q]);
}

TEST(AtlasLayout, RowsAreNormalisedToUnitLength) {
  const std::vector<float> n = l2_normalize_rows({3, 4, 0, 0, -1, 0}, 2);
  EXPECT_FLOAT_EQ(n[0], 0.6f);
  EXPECT_FLOAT_EQ(n[1], 0.8f);
  EXPECT_FLOAT_EQ(n[2], 0.0f);  // a zero row stays zero
  EXPECT_FLOAT_EQ(n[3], 0.0f);
  EXPECT_FLOAT_EQ(n[4], -1.0f);
}

}  // namespace
}  // namespace cnnvis
