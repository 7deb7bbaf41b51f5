#include "cnnvis/core/top_k.h"

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace cnnvis {
namespace {

TEST(StreamingTopK, EqualsAStableFullSortCutAtK) {
  std::mt19937 gen(5);
  std::uniform_int_distribution<int> score(0, 40);  // many ties
  for (std::size_t k : {0u, 1u, 7u, 50u, 1000u}) {
    std::vector<int> scores(600);
    for (auto& s : scores) s = score(gen);
    StreamingTopK<int> top(k);
    for (int i = 0; i < 600; ++i) top.push(scores[i], i);
    std::vector<int> order(600);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return scores[a] > scores[b]; });
    order.resize(std::min<std::size_t>(k, 600));
    const auto kept = top.sorted();
    ASSERT_EQ(kept.size(), order.size()) << "k " << k;
    for (std::size_t r = 0; r < kept.size(); ++r) {
      EXPECT_EQ(kept[r].item, order[r]) << "k " << k << " rank " << r;
      EXPECT_EQ(kept[r].score, scores[order[r]]);
    }
  }
}

TEST(StreamingTopK, WouldKeepMatchesPush) {
  StreamingTopK<int> top(2);
  EXPECT_TRUE(top.would_keep(-5));
  top.push(1.0, 0);
  top.push(3.0, 1);
  EXPECT_FALSE(top.would_keep(1.0));  // a tie with the worst kept loses: it came later
  EXPECT_FALSE(top.push(1.0, 2));
  EXPECT_TRUE(top.would_keep(2.0));
  EXPECT_TRUE(top.push(2.0, 3));
  EXPECT_EQ(top.sorted()[1].item, 3);
}

}  // namespace
}  // namespace cnnvis
