// RISE on tiny networks whose class probability is a known function of the masked input.
#include <cmath>
#include <cstring>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include "cnnvis/core/errors.h"
#include "cnnvis/methods/rise.h"
#include "tiny_models.h"

namespace cnnvis {
namespace {

double sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }

bool same_bytes(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && a.type() == b.type() && a.isContinuous() && b.isContinuous() &&
         std::memcmp(a.data, b.data, a.total() * a.elemSize()) == 0;
}

// A red image (R = 1, G = B = 0) of the given size.
cv::Mat red_image(int size) { return cv::Mat(size, size, CV_32FC3, cv::Scalar(1, 0, 0)); }

// 1x1 conv -> ReLU -> GAP -> linear on a 4 x 4 input: unit 0 is the red channel, unit 1 is always 0,
// class 0 has weight 4 on unit 0, class 1 none. Seen through a mask M, the red image gives
// logits (4 mean(M), 0), so P_0 = sigmoid(4 mean(M)).
LoadedModel mean_of_mask_model() {
  return testing::tiny_conv_gap_model({1, 0, 0, 0, 0, 0}, {0, 0}, {4, 0, 0, 0}, 4, {"a", "b"});
}

// The conv -> ReLU -> 2x2 max pool -> ReLU -> linear net on 8 x 8: class "a" reads only the 2 x 2 pool
// cells of the top-left 4 x 4 pixels (weight 1 each, bias -2), class "b" nothing. On the red image
// through M, conv = M, so P_a = sigmoid(sum of the four top-left cells' max of M - 2): only that
// quadrant matters.
LoadedModel top_left_model() {
  std::vector<float> fc(2 * 16, 0.0f);
  for (int row = 0; row < 2; ++row) {
    for (int col = 0; col < 2; ++col) fc[row * 4 + col] = 1.0f;
  }
  return testing::tiny_conv_pool_linear_model(8, fc, 0.0f, {-2.0f, 0.0f});
}

TEST(Rise, GivenMasksGiveTheFormulaByHand) {
  LoadedModel model = mean_of_mask_model();
  const cv::Mat ones = cv::Mat::ones(4, 4, CV_32F), zeros = cv::Mat::zeros(4, 4, CV_32F);
  cv::Mat left = cv::Mat::zeros(4, 4, CV_32F);
  left.colRange(0, 2).setTo(1.0f);
  const cv::Mat quarter(4, 4, CV_32F, cv::Scalar(0.25));
  RiseOptions options;
  options.keep = 0.5f;
  // S = sum_i P_i M_i / (N p) with P = sigmoid(4), 1/2, sigmoid(2), sigmoid(1) and N p = 4 * 0.5.
  const double right_value = (sigmoid(4) + 0.25 * sigmoid(1)) / 2.0;
  const double left_value = right_value + sigmoid(2) / 2.0;
  cv::Mat first;
  for (int batch : {1, 3, 8}) {
    options.batch_size = batch;
    const RiseResult r = run_rise_with_masks(model, red_image(4), {ones, zeros, left, quarter}, options);
    EXPECT_EQ(r.target.index, 0);  // top: logit 4 against 0
    EXPECT_NEAR(r.target.probability, sigmoid(4), 1e-6);
    ASSERT_EQ(r.map.size(), cv::Size(4, 4));
    for (int y = 0; y < 4; ++y) {
      for (int x = 0; x < 4; ++x) {
        EXPECT_NEAR(r.map.at<float>(y, x), x < 2 ? left_value : right_value, 1e-6) << y << "," << x;
      }
    }
    if (first.empty()) first = r.map.clone();
    EXPECT_TRUE(same_bytes(first, r.map)) << "batch " << batch;
  }
  // Explaining class 1 (P_1 = 1 - P_0) uses the same masks.
  options.target = "1";
  const RiseResult b = run_rise_with_masks(model, red_image(4), {ones, zeros, left, quarter}, options);
  EXPECT_NEAR(b.map.at<float>(0, 3), ((1 - sigmoid(4)) + 0.25 * (1 - sigmoid(1))) / 2.0, 1e-6);
}

TEST(Rise, GeneratedMasksDependOnlyOnSeedAndIndex) {
  RiseOptions options;
  options.cells = 4;
  options.keep = 0.3f;
  options.seed = 9;
  const auto all = rise_masks(16, 12, options, 0, 400);
  ASSERT_EQ(all.size(), 400u);
  const auto part = rise_masks(16, 12, options, 5, 3);
  for (int k = 0; k < 3; ++k) EXPECT_TRUE(same_bytes(part[k], all[5 + k])) << k;
  double total = 0, lo = 1, hi = 0;
  int different = 0;
  for (const cv::Mat& m : all) {
    ASSERT_EQ(m.size(), cv::Size(12, 16));
    double mlo = 0, mhi = 0;
    cv::minMaxLoc(m, &mlo, &mhi);
    lo = std::min(lo, mlo);
    hi = std::max(hi, mhi);
    total += cv::mean(m)[0];
    if (!same_bytes(m, all[0])) ++different;
  }
  EXPECT_GE(lo, 0.0);
  EXPECT_LE(hi, 1.0);
  EXPECT_NEAR(total / all.size(), 0.3, 0.03);  // E[M] = p
  EXPECT_GT(different, 390);
  options.seed = 10;
  EXPECT_FALSE(same_bytes(rise_masks(16, 12, options, 5, 1)[0], all[5]));
  // Keep probability 1: every cell kept, the mask is all ones (to the interpolation weights' rounding).
  options.keep = 1.0f;
  for (const cv::Mat& m : rise_masks(16, 12, options, 0, 5)) {
    EXPECT_LE(cv::norm(m, cv::Mat::ones(m.size(), CV_32F), cv::NORM_INF), 1e-6);
  }
}

TEST(Rise, MapIsHigherWhereTheClassLooks) {
  LoadedModel model = top_left_model();
  RiseOptions options;
  options.masks = 2000;
  options.cells = 4;  // cells of 2 px
  options.target = "a";
  options.seed = 1;
  const RiseResult r = run_rise(model, {red_image(8)}, options).at(0);
  const cv::Mat map = r.map;
  const double inside = cv::mean(map(cv::Rect(0, 0, 4, 4)))[0];
  cv::Mat outside_mask = cv::Mat::ones(8, 8, CV_8U);
  outside_mask(cv::Rect(0, 0, 5, 5)).setTo(0);  // bilinear masks spill a pixel past the quadrant
  const double outside = cv::mean(map, outside_mask)[0];
  EXPECT_GT(inside, outside + 0.03) << "inside " << inside << " outside " << outside;
  // Far from the quadrant the map is about E[P_a], the same everywhere.
  double far_lo = 0, far_hi = 0;
  cv::minMaxLoc(map(cv::Rect(6, 6, 2, 2)), &far_lo, &far_hi);
  EXPECT_LT(far_hi, inside);
}

TEST(Rise, SameSeedSameBytesWhateverTheBatchSize) {
  LoadedModel model = top_left_model();
  cv::Mat image(8, 8, CV_32FC3);
  cv::RNG rng(3);
  rng.fill(image, cv::RNG::UNIFORM, 0.0, 1.0);
  RiseOptions options;
  options.masks = 50;
  options.cells = 3;
  options.seed = 4;
  std::vector<std::pair<std::size_t, std::size_t>> calls;
  options.progress = [&calls](std::size_t done, std::size_t total) { calls.emplace_back(done, total); };
  options.batch_size = 1;
  const RiseResult a = run_rise(model, {image}, options).at(0);
  ASSERT_EQ(calls.size(), 7u);  // steps of 8: the batch size is rounded up to the pass size
  EXPECT_EQ(calls.back(), std::make_pair(std::size_t{50}, std::size_t{50}));
  for (int batch : {5, 7, 32, 64}) {
    options.batch_size = batch;
    EXPECT_TRUE(same_bytes(run_rise(model, {image}, options).at(0).map, a.map)) << "batch " << batch;
  }
  // Two images in one call: each as if alone; progress counts both.
  calls.clear();
  const auto both = run_rise(model, {red_image(8), image}, options);
  ASSERT_EQ(both.size(), 2u);
  EXPECT_TRUE(same_bytes(both[1].map, a.map));
  EXPECT_EQ(calls.back(), std::make_pair(std::size_t{100}, std::size_t{100}));
  // The generated masks are the ones run_rise uses.
  const RiseResult given = run_rise_with_masks(model, image, rise_masks(8, 8, options, 0, 50), options);
  EXPECT_TRUE(same_bytes(given.map, a.map));
  options.seed = 5;
  EXPECT_FALSE(same_bytes(run_rise(model, {image}, options).at(0).map, a.map));
}

TEST(Rise, BadOptionsAreUsageErrors) {
  LoadedModel model = mean_of_mask_model();
  const cv::Mat image = red_image(4);
  auto expect_bad = [&](auto change) {
    RiseOptions options;
    options.masks = 4;
    change(options);
    EXPECT_THROW(run_rise(model, {image}, options), UsageError);
  };
  expect_bad([](RiseOptions& o) { o.masks = 0; });
  expect_bad([](RiseOptions& o) { o.cells = 0; });
  expect_bad([](RiseOptions& o) { o.keep = 0.0f; });
  expect_bad([](RiseOptions& o) { o.keep = 1.5f; });
  expect_bad([](RiseOptions& o) { o.keep = std::nanf(""); });
  expect_bad([](RiseOptions& o) { o.batch_size = 0; });
  expect_bad([](RiseOptions& o) { o.target = "c"; });
  const RiseOptions defaults;
  EXPECT_THROW(run_rise_with_masks(model, image, {}, defaults), UsageError);
  EXPECT_THROW(run_rise_with_masks(model, image, {cv::Mat::ones(3, 4, CV_32F)}, defaults), UsageError);
  EXPECT_THROW(run_rise_with_masks(model, image, {cv::Mat::ones(4, 4, CV_8U)}, defaults), UsageError);
  EXPECT_TRUE(run_rise(model, {}, defaults).empty());
  EXPECT_EQ(defaults.masks, 4000);
  EXPECT_EQ(defaults.cells, 7);
  EXPECT_FLOAT_EQ(defaults.keep, 0.5f);
}

}  // namespace
}  // namespace cnnvis
