#include "cnnvis/core/batch_retry.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "cnnvis/core/errors.h"

namespace cnnvis {
namespace {

// A fake device that runs out of memory for any chunk larger than `capacity` items and records what ran.
struct FakeDevice {
  std::size_t capacity;
  std::vector<std::pair<std::size_t, std::size_t>> attempts;
  std::vector<int> processed;  // how often each item finished
  std::vector<std::pair<std::size_t, std::size_t>> retries;

  explicit FakeDevice(std::size_t count, std::size_t cap) : capacity(cap), processed(count, 0) {}

  std::size_t run(std::size_t max_chunk) {
    return run_with_batch_halving(
        processed.size(), max_chunk,
        [&](std::size_t first, std::size_t last) {
          attempts.emplace_back(first, last);
          if (last - first > capacity) throw OutOfMemoryError("CUDA out of memory (injected)");
          for (std::size_t i = first; i < last; ++i) ++processed[i];
        },
        [&](std::size_t failed, std::size_t next, const std::string& message) {
          EXPECT_NE(message.find("out of memory"), std::string::npos);
          retries.emplace_back(failed, next);
        });
  }
};

TEST(BatchRetry, NoFailureProcessesInChunksOfMaxChunk) {
  FakeDevice device(10, 100);
  EXPECT_EQ(device.run(4), 4u);
  EXPECT_EQ(device.attempts, (std::vector<std::pair<std::size_t, std::size_t>>{{0, 4}, {4, 8}, {8, 10}}));
  EXPECT_TRUE(device.retries.empty());
  for (int n : device.processed) EXPECT_EQ(n, 1);
}

TEST(BatchRetry, HalvesUntilTheChunkFitsAndKeepsTheSmallerSize) {
  FakeDevice device(8, 3);
  EXPECT_EQ(device.run(8), 2u);  // 8 -> 4 -> 2
  for (int n : device.processed) EXPECT_EQ(n, 1);
  ASSERT_EQ(device.retries.size(), 2u);
  EXPECT_EQ(device.retries[0], (std::pair<std::size_t, std::size_t>{8, 4}));
  EXPECT_EQ(device.retries[1], (std::pair<std::size_t, std::size_t>{4, 2}));
  // After finding that 2 fits, the rest of the batch goes in chunks of 2 without failing again.
  EXPECT_EQ(device.attempts.back(), (std::pair<std::size_t, std::size_t>{6, 8}));
  EXPECT_EQ(device.attempts.size(), 6u);  // [0,8) [0,4) [0,2) [2,4) [4,6) [6,8)
}

TEST(BatchRetry, OddSizesRoundUpAndCoverEveryItemOnce) {
  for (std::size_t count = 1; count <= 13; ++count) {
    for (std::size_t cap = 1; cap <= 5; ++cap) {
      FakeDevice device(count, cap);
      const std::size_t worked = device.run(count);
      EXPECT_LE(worked, cap);
      EXPECT_GE(worked, 1u);
      for (int n : device.processed) EXPECT_EQ(n, 1) << count << " items, capacity " << cap;
    }
  }
}

TEST(BatchRetry, OutOfMemoryOnASingleItemPropagates) {
  FakeDevice device(3, 0);
  EXPECT_THROW(device.run(3), OutOfMemoryError);
  EXPECT_EQ(device.processed, (std::vector<int>{0, 0, 0}));
}

TEST(BatchRetry, OtherErrorsAreNotRetried) {
  int calls = 0;
  EXPECT_THROW(run_with_batch_halving(
                   4, 4, [&](std::size_t, std::size_t) { ++calls; throw InputError("x.png: corrupt"); },
                   [](std::size_t, std::size_t, const std::string&) { FAIL() << "no retry expected"; }),
               InputError);
  EXPECT_EQ(calls, 1);
}

TEST(BatchRetry, EmptyBatchCallsNothing) {
  int calls = 0;
  EXPECT_EQ(run_with_batch_halving(0, 4, [&](std::size_t, std::size_t) { ++calls; },
                                   [](std::size_t, std::size_t, const std::string&) {}),
            4u);
  EXPECT_EQ(calls, 0);
}

}  // namespace
}  // namespace cnnvis
