#include "cnnvis/core/eta.h"

#include <cmath>

#include <gtest/gtest.h>

namespace cnnvis {
namespace {

TEST(EtaEstimator, UnknownUntilTimed) {
  EtaEstimator eta(100);
  EXPECT_LT(eta.seconds_left(), 0);
  EXPECT_EQ(eta.recent_rate(), 0);
  eta.observe(0, 3.0);  // time with no item finished yet says nothing on its own
  EXPECT_LT(eta.seconds_left(), 0);
}

TEST(EtaEstimator, EqualItemsGiveTheAverageRate) {
  EtaEstimator eta(100);
  for (std::size_t i = 1; i <= 10; ++i) eta.observe(i, 0.5 * static_cast<double>(i));
  EXPECT_NEAR(eta.seconds_left(), 45.0, 1e-9);
  EXPECT_NEAR(eta.recent_rate(), 2.0, 1e-9);
  eta.observe(100, 50.0);
  EXPECT_EQ(eta.seconds_left(), 0);
}

TEST(EtaEstimator, ResumedItemsCostNothing) {
  EtaEstimator eta(100, 50);
  eta.observe(60, 5.0);
  EXPECT_NEAR(eta.recent_rate(), 2.0, 1e-9);
  EXPECT_NEAR(eta.seconds_left(), 20.0, 1e-9);
}

TEST(EtaEstimator, RecentRateFollowsAChange) {
  EtaEstimator eta(1000);
  double t = 0;
  std::size_t done = 0;
  for (int i = 0; i < 100; ++i) eta.observe(++done, t += 1.0);   // 1 item/s
  for (int i = 0; i < 80; ++i) eta.observe(++done, t += 0.25);  // 4 items/s for 20 s
  EXPECT_NEAR(eta.recent_rate(10.0), 4.0, 1e-6);
  EXPECT_LT(static_cast<double>(done) / t, 1.6);  // the run's average is far from it
}

// A training run on crops growing 32, 40, 48, 56 px and then whole 64 px canvases (equal step counts per
// stage), each step costing a fixed part plus a part per pixel: the ETA must track the true time left once
// two sizes have been seen, where the average rate would be far too hopeful.
TEST(EtaEstimator, GrowingStepsAreForeseen) {
  const std::size_t per_stage = 200, total = 5 * per_stage;
  auto side = [&](std::size_t step) { return 32.0 + 8.0 * static_cast<double>(step / per_stage); };
  auto pixels = [&](std::size_t step) { return side(step) * side(step); };
  for (const double fixed : {0.0, 0.002}) {
    const double per_pixel = 1e-6;
    auto cost = [&](std::size_t step) { return fixed + per_pixel * pixels(step); };
    EtaEstimator eta(total, 0, pixels);
    std::vector<double> clock(total + 1, 0.0);
    for (std::size_t i = 0; i < total; ++i) clock[i + 1] = clock[i] + cost(i);
    double worst_from_second_stage = 0, average_rate_error_at_stage_two = 0;
    for (std::size_t done = 1; done <= total; ++done) {
      eta.observe(done, clock[done]);
      const double truth = clock[total] - clock[done];
      if (done == total) {
        EXPECT_EQ(eta.seconds_left(), 0);
        break;
      }
      const double error = std::abs(eta.seconds_left() - truth) / truth;
      if (done < per_stage && fixed == 0.0) EXPECT_LE(error, 1e-6) << "step " << done;  // proportional cost
      if (done > per_stage) worst_from_second_stage = std::max(worst_from_second_stage, error);
      if (done == per_stage + 1) {
        const double by_average = static_cast<double>(total - done) * clock[done] / static_cast<double>(done);
        average_rate_error_at_stage_two = std::abs(by_average - truth) / truth;
      }
    }
    EXPECT_LE(worst_from_second_stage, 1e-6) << "fixed cost " << fixed;
    EXPECT_GE(average_rate_error_at_stage_two, 0.3) << "the scenario would not tell the models apart";
  }
}

TEST(EtaEstimator, NoisyStepTimesStillGiveACloseEstimate) {
  // Step times jitter by +-30 % around fixed + per-pixel cost; the ETA from the second stage on stays
  // within 10 % of the truth.
  const std::size_t per_stage = 300, total = 4 * per_stage;
  auto pixels = [&](std::size_t step) {
    const double s = 32.0 + 8.0 * static_cast<double>(step / per_stage);
    return s * s;
  };
  EtaEstimator eta(total, 0, pixels);
  std::vector<double> clock(total + 1, 0.0);
  std::uint64_t state = 12345;
  for (std::size_t i = 0; i < total; ++i) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    const double jitter = 0.7 + 0.6 * static_cast<double>(state >> 11) / 9007199254740992.0;
    clock[i + 1] = clock[i] + (0.001 + 1e-6 * pixels(i)) * jitter;
  }
  for (std::size_t done = 1; done < total; ++done) {
    eta.observe(done, clock[done]);
    if (done > per_stage + 50) {
      const double truth = clock[total] - clock[done];
      EXPECT_NEAR(eta.seconds_left(), truth, 0.1 * truth + 0.05) << "step " << done;
    }
  }
}

TEST(EtaEstimator, FollowsAMachineThatSlowsDown) {
  // Equal items at 0.1 s each for 1000 items, then three times slower (another process took the cores):
  // once the slowdown has lasted the 30 s window, the ETA is the slow speed's, not the run's average.
  const std::size_t total = 2000;
  EtaEstimator eta(total);
  double t = 0;
  std::size_t done = 0;
  for (; done < 1000;) eta.observe(++done, t += 0.1);
  for (int i = 0; i < 200; ++i) eta.observe(++done, t += 0.3);  // 60 s of slow items
  const double truth = 0.3 * static_cast<double>(total - done);
  EXPECT_NEAR(eta.seconds_left(), truth, 1e-6 * truth);
  EXPECT_NEAR(eta.recent_rate(), 1.0 / 0.3, 1e-6);
}

}  // namespace
}  // namespace cnnvis
