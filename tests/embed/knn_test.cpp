#include "cnnvis/embed/knn.h"

#include <algorithm>
#include <random>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "cnnvis/core/errors.h"

namespace cnnvis {
namespace {

std::vector<float> random_points(int n, int d, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(-3.f, 3.f);
  std::vector<float> x(static_cast<std::size_t>(n) * d);
  for (auto& v : x) v = u(gen);
  return x;
}

TEST(ExactKnn, MatchesFullSortOfAllDistances) {
  const int n = 700, d = 13, k = 25;  // n not a multiple of the block or tile sizes
  const auto x = random_points(n, d, 3);
  const KnnGraph g = exact_knn(x.data(), n, d, k, 2);
  for (int i = 0; i < n; i += 7) {
    std::vector<std::pair<double, int>> all;
    for (int j = 0; j < n; ++j) {
      if (j == i) continue;
      double s = 0;
      for (int c = 0; c < d; ++c) {
        const double diff = static_cast<double>(x[i * d + c]) - x[j * d + c];
        s += diff * diff;
      }
      all.emplace_back(s, j);
    }
    std::sort(all.begin(), all.end());
    for (int j = 0; j < k; ++j) {
      EXPECT_EQ(g.indices[i * k + j], all[j].second) << "point " << i << " rank " << j;
      EXPECT_NEAR(g.distances[i * k + j], all[j].first, 1e-4 * all[j].first);
    }
  }
}

TEST(ExactKnn, IndependentOfThreadCountAndBreaksTiesByIndex) {
  // Points on an integer grid: many exactly equal distances.
  std::vector<float> x;
  for (int a = 0; a < 20; ++a) {
    for (int b = 0; b < 20; ++b) {
      x.push_back(static_cast<float>(a));
      x.push_back(static_cast<float>(b));
    }
  }
  const int n = 400;
  const KnnGraph one = exact_knn(x.data(), n, 2, 8, 1);
  const KnnGraph three = exact_knn(x.data(), n, 2, 8, 3);
  EXPECT_EQ(one.indices, three.indices);
  EXPECT_EQ(one.distances, three.distances);
  // Interior point (5, 5) = index 105: 4 neighbours at distance 1 in index order, then 4 at 2.
  const int* nb = &one.indices[105 * 8];
  EXPECT_EQ(std::vector<int>(nb, nb + 4), (std::vector<int>{85, 104, 106, 125}));
  EXPECT_EQ(std::vector<int>(nb + 4, nb + 8), (std::vector<int>{84, 86, 124, 126}));
  EXPECT_FLOAT_EQ(one.distances[105 * 8 + 4], 2.f);
}

TEST(ExactKnn, RejectsBadK) {
  const auto x = random_points(10, 2, 1);
  EXPECT_THROW(exact_knn(x.data(), 10, 2, 10), UsageError);
  EXPECT_THROW(exact_knn(x.data(), 10, 2, 0), UsageError);
}

}  // namespace
}  // namespace cnnvis
