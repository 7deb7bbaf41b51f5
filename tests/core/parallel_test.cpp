#include "cnnvis/core/parallel.h"

#include <atomic>
#include <numeric>
#include <stdexcept>
#include <vector>

#include <gtest/gtest.h>

namespace cnnvis {
namespace {

TEST(ThreadPool, RunsEveryWorkerIndexOnceAndCanBeReused) {
  ThreadPool pool(3);
  ASSERT_EQ(pool.size(), 3);
  for (int round = 0; round < 200; ++round) {
    std::vector<std::atomic<int>> calls(3);
    pool.run([&](int w) { ++calls[w]; });
    for (int w = 0; w < 3; ++w) ASSERT_EQ(calls[w].load(), 1) << "round " << round << ", worker " << w;
  }
  EXPECT_FALSE(pool.busy());
}

TEST(ThreadPool, RethrowsTheFirstExceptionByWorkerIndexAndStaysUsable) {
  ThreadPool pool(3);
  try {
    pool.run([](int w) {
      if (w >= 1) throw std::runtime_error("worker " + std::to_string(w));
    });
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "worker 1");
  }
  std::atomic<int> total{0};
  pool.run([&](int w) { total += w + 1; });
  EXPECT_EQ(total.load(), 6);
}

TEST(ParallelScope, ParallelForCoversEachIndexOnceOnThePoolAndNestedLoopsStillWork) {
  const ParallelScope scope(2);
  ASSERT_NE(detail::current_pool(), nullptr);
  for (std::size_t n : {1u, 2u, 7u, 1000u}) {
    std::vector<int> hits(n, 0);
    std::vector<int> inner(n, 0);
    parallel_for(n, 2, [&](std::size_t begin, std::size_t end) {
      for (std::size_t i = begin; i < end; ++i) ++hits[i];
      // Nested: the pool is busy, so this one starts threads of its own.
      parallel_for(end - begin, 2, [&](std::size_t b, std::size_t e) {
        for (std::size_t i = b; i < e; ++i) ++inner[begin + i];
      });
    });
    EXPECT_EQ(std::accumulate(hits.begin(), hits.end(), 0), static_cast<int>(n));
    EXPECT_EQ(*std::min_element(hits.begin(), hits.end()), 1);
    EXPECT_EQ(*std::min_element(inner.begin(), inner.end()), 1);
    EXPECT_EQ(*std::max_element(inner.begin(), inner.end()), 1);
  }
  EXPECT_THROW(parallel_for(10, 2, [](std::size_t, std::size_t) { throw std::runtime_error("x"); }),
               std::runtime_error);
}

TEST(ParallelScope, RestoresThePreviousPool) {
  ASSERT_EQ(detail::current_pool(), nullptr);
  {
    const ParallelScope outer(2);
    ThreadPool* outer_pool = detail::current_pool();
    ASSERT_NE(outer_pool, nullptr);
    {
      const ParallelScope inner(3);
      EXPECT_NE(detail::current_pool(), outer_pool);
      EXPECT_EQ(detail::current_pool()->size(), 3);
    }
    EXPECT_EQ(detail::current_pool(), outer_pool);
  }
  EXPECT_EQ(detail::current_pool(), nullptr);
  const ParallelScope single(1);  // one thread: no pool at all
  EXPECT_EQ(detail::current_pool(), nullptr);
}

}  // namespace
}  // namespace cnnvis
