// ROAD's noisy linear imputation against hand-derived values (one removed pixel is the weighted mean of
// its neighbours; constant and linear images are reproduced), and the MoRF / LeRF scores on a model whose
// class-0 logit is 40 x the mean red value.
#include <cmath>

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include "cnnvis/core/errors.h"
#include "cnnvis/methods/road.h"
#include "cnnvis/models/layers.h"
#include "cnnvis/models/network.h"
#include "tiny_models.h"

namespace cnnvis {
namespace {

cv::Mat random_image(int h, int w, int channels, int seed) {
  cv::Mat image(h, w, CV_32FC(channels));
  cv::RNG rng(seed);
  rng.fill(image, cv::RNG::UNIFORM, 0.0, 1.0);
  return image;
}

TEST(RoadImputation, OneRemovedPixelIsTheWeightedMeanOfItsNeighbours) {
  const cv::Mat image = random_image(7, 9, 3, 1);
  cv::Mat removed = cv::Mat::zeros(7, 9, CV_8U);
  removed.at<unsigned char>(3, 4) = 1;
  removed.at<unsigned char>(0, 0) = 1;  // a corner: 3 neighbours, weights renormalised
  const cv::Mat out = impute_linear(image, removed);
  for (int c = 0; c < 3; ++c) {
    auto v = [&](int y, int x) { return static_cast<double>(image.at<cv::Vec3f>(y, x)[c]); };
    const double edge = v(2, 4) + v(4, 4) + v(3, 3) + v(3, 5);
    const double diagonal = v(2, 3) + v(2, 5) + v(4, 3) + v(4, 5);
    EXPECT_NEAR(out.at<cv::Vec3f>(3, 4)[c], edge / 6 + diagonal / 12, 1e-6) << "channel " << c;
    const double corner = (v(0, 1) / 6 + v(1, 0) / 6 + v(1, 1) / 12) / (1.0 / 6 + 1.0 / 6 + 1.0 / 12);
    EXPECT_NEAR(out.at<cv::Vec3f>(0, 0)[c], corner, 1e-6) << "channel " << c;
  }
  // Known pixels are untouched, bit for bit.
  for (int y = 0; y < 7; ++y) {
    for (int x = 0; x < 9; ++x) {
      if (removed.at<unsigned char>(y, x)) continue;
      EXPECT_EQ(out.at<cv::Vec3f>(y, x), image.at<cv::Vec3f>(y, x));
    }
  }
}

TEST(RoadImputation, ConstantAndLinearImagesAreReproduced) {
  const int h = 12, w = 14;
  cv::Mat constant(h, w, CV_32FC3, cv::Scalar(0.25, -0.5, 0.75));
  cv::Mat removed = cv::Mat::zeros(h, w, CV_8U);
  removed(cv::Rect(0, 0, 6, 5)).setTo(1);    // touches the border
  removed(cv::Rect(8, 6, 5, 6)).setTo(1);    // touches the border too
  const cv::Mat flat = impute_linear(constant, removed, 1e-12);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      for (int c = 0; c < 3; ++c) EXPECT_NEAR(flat.at<cv::Vec3f>(y, x)[c], constant.at<cv::Vec3f>(y, x)[c], 1e-6);
    }
  }
  // A linear ramp is its own neighbour average away from the border (symmetric weights): a removed block
  // inside the image is reproduced exactly.
  cv::Mat ramp(h, w, CV_32FC3);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) ramp.at<cv::Vec3f>(y, x) = cv::Vec3f(0.1f + 0.03f * x, 0.02f * y - 0.2f, 0.01f * (x + y));
  }
  cv::Mat inner = cv::Mat::zeros(h, w, CV_8U);
  inner(cv::Rect(3, 2, 7, 6)).setTo(1);
  const cv::Mat out = impute_linear(ramp, inner, 1e-12);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      for (int c = 0; c < 3; ++c) EXPECT_NEAR(out.at<cv::Vec3f>(y, x)[c], ramp.at<cv::Vec3f>(y, x)[c], 1e-6);
    }
  }
  // At the border the weights are renormalised over fewer neighbours: a ramp is not reproduced there.
  cv::Mat edge = cv::Mat::zeros(h, w, CV_8U);
  edge.at<unsigned char>(0, 5) = 1;
  const cv::Mat off = impute_linear(ramp, edge);
  EXPECT_GT(std::abs(off.at<cv::Vec3f>(0, 5)[1] - ramp.at<cv::Vec3f>(0, 5)[1]), 1e-3);
}

TEST(RoadImputation, NoiseIsSeededAndHasTheAskedSd) {
  const cv::Mat image = random_image(40, 40, 1, 2);
  cv::Mat removed = cv::Mat::zeros(40, 40, CV_8U);
  removed(cv::Rect(5, 5, 30, 30)).setTo(1);  // 900 pixels
  const cv::Mat clean = impute_linear(image, removed);
  EXPECT_EQ(cv::norm(clean, impute_linear(image, removed), cv::NORM_INF), 0.0);
  cv::RNG a(7), b(7), c(8);
  const cv::Mat na = impute_linear(image, removed, 1e-9, 0.05f, &a);
  const cv::Mat nb = impute_linear(image, removed, 1e-9, 0.05f, &b);
  const cv::Mat nc = impute_linear(image, removed, 1e-9, 0.05f, &c);
  EXPECT_EQ(cv::norm(na, nb, cv::NORM_INF), 0.0);
  EXPECT_GT(cv::norm(na, nc, cv::NORM_INF), 0.0);
  cv::Scalar mean, sd;
  cv::meanStdDev(na - clean, mean, sd, removed);
  EXPECT_NEAR(sd[0], 0.05, 0.005);
  EXPECT_NEAR(mean[0], 0.0, 0.006);
}

TEST(RoadImputation, RejectsBadInput) {
  const cv::Mat image = random_image(4, 4, 3, 3);
  EXPECT_THROW(impute_linear(image, cv::Mat::ones(4, 4, CV_8U)), UsageError);   // nothing known
  EXPECT_THROW(impute_linear(image, cv::Mat::zeros(3, 4, CV_8U)), UsageError);  // wrong size
  EXPECT_THROW(impute_linear(image, cv::Mat::zeros(4, 4, CV_32F)), UsageError); // wrong type
}

constexpr int kSize = 16;
constexpr float kGain = 40.0f;
const cv::Rect kSquare(3, 5, 6, 4);  // 24 of 256 pixels

// class-0 logit = 40 x mean red, class 1: 0, so p0 = sigmoid(40 mean red); identity normalisation.
LoadedModel red_model() { return testing::red_model(kSize, kGain); }

double sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }

TEST(Road, MorfAndLerfOfThePerfectMap) {
  LoadedModel model = red_model();
  cv::Mat image = cv::Mat::zeros(kSize, kSize, CV_32FC3);
  image(kSquare).setTo(cv::Scalar(1, 0, 0));
  cv::Mat map = cv::Mat::zeros(kSize, kSize, CV_32F);
  map(kSquare).setTo(1.0);
  RoadOptions options;
  options.noise = 0;
  options.percentages = {10, 50, 90};
  const auto scores = score_road(model, {image}, {map}, {0}, options);
  ASSERT_EQ(scores.size(), 1u);
  const RoadScores& s = scores[0];
  EXPECT_NEAR(s.probability, sigmoid(kGain * 24.0 / 256), 1e-5);
  ASSERT_EQ(s.morf.size(), 3u);
  ASSERT_EQ(s.lerf.size(), 3u);
  // MoRF: 10 % = 26 pixels, the square first: imputed from black neighbours, it is black: p = 0.5.
  for (float p : s.morf) EXPECT_NEAR(p, 0.5, 1e-5);
  // LeRF: the round(k % x 256) last pixels in raster order outside the square are removed; their
  // imputation (checked above) decides the mean red.
  for (std::size_t k = 0; k < options.percentages.size(); ++k) {
    const int count = static_cast<int>(std::lround(256.0 * options.percentages[k] / 100.0));
    cv::Mat removed = cv::Mat::zeros(kSize, kSize, CV_8U);
    int left = count;
    for (int index = kSize * kSize - 1; index >= 0 && left > 0; --index) {
      const cv::Point p(index % kSize, index / kSize);
      if (kSquare.contains(p)) continue;
      removed.at<unsigned char>(p) = 1;
      --left;
    }
    std::vector<cv::Mat> channels;
    cv::split(impute_linear(image, removed), channels);
    EXPECT_NEAR(s.lerf[k], sigmoid(kGain * cv::mean(channels[0])[0]), 1e-5) << options.percentages[k] << " %";
  }
  EXPECT_NEAR(s.morf_mean, 0.5, 1e-5);
  EXPECT_NEAR(s.lerf_mean, (s.lerf[0] + s.lerf[1] + s.lerf[2]) / 3, 1e-6);
  EXPECT_NEAR(s.combined, (s.lerf_mean - s.morf_mean) / 2, 1e-6);
  EXPECT_GT(s.combined, 0.0f);
}

TEST(Road, SameSeedSameScoresAndBadOptionsAreRefused) {
  LoadedModel model = red_model();
  const cv::Mat image = random_image(kSize, kSize, 3, 4) * 0.05;  // p0 = sigmoid(about 1): not saturated
  const cv::Mat map = random_image(kSize, kSize, 1, 5);
  RoadOptions options;
  options.noise = 0.2f;
  const auto a = score_road(model, {image}, {map}, {0}, options);
  const auto b = score_road(model, {image}, {map}, {0}, options);
  EXPECT_EQ(a[0].morf, b[0].morf);
  EXPECT_EQ(a[0].lerf, b[0].lerf);
  options.seed = 1;
  const auto c = score_road(model, {image}, {map}, {0}, options);
  EXPECT_NE(a[0].morf, c[0].morf);
  RoadOptions bad;
  bad.percentages = {0, 50};
  EXPECT_THROW(score_road(model, {image}, {map}, {0}, bad), UsageError);
  bad.percentages = {100};
  EXPECT_THROW(score_road(model, {image}, {map}, {0}, bad), UsageError);
  EXPECT_THROW(score_road(model, {image}, {map}, {7}), UsageError);
  EXPECT_THROW(score_road(model, {image}, {}, {0}), UsageError);
}

}  // namespace
}  // namespace cnnvis
