// Saliency (vanilla gradient, SmoothGrad, integrated gradients) on the tiny net of backprop_test.cpp:
//   h = R - G + 0.5 B + b -> ReLU -> maxpool 2x2 -> ReLU -> linear (2 classes)
#include <cmath>

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include "cnnvis/core/errors.h"
#include "cnnvis/methods/backprop.h"
#include "cnnvis/methods/saliency.h"
#include "cnnvis/models/layers.h"
#include "cnnvis/models/network.h"
#include "tiny_models.h"

namespace cnnvis {
namespace {

constexpr int kSize = 8;
constexpr int kCells = (kSize / 2) * (kSize / 2);

LoadedModel tiny_model(float conv_bias, unsigned seed = 7, float fc_bias = 0.25f) {
  std::vector<float> linear(2 * kCells);
  cv::RNG rng(seed);
  for (float& w : linear) w = static_cast<float>(rng.uniform(-1.0, 1.0));
  return testing::tiny_conv_pool_linear_model(kSize, linear, conv_bias, {fc_bias, -fc_bias});
}

cv::Mat random_image(unsigned seed) {
  cv::Mat image(kSize, kSize, CV_32FC3);
  cv::RNG rng(seed);
  rng.fill(image, cv::RNG::UNIFORM, 0.0, 1.0);
  return image;
}

double max_diff(const cv::Mat& a, const cv::Mat& b) { return cv::norm(a, b, cv::NORM_INF); }

SaliencyResult run_one(LoadedModel& model, const cv::Mat& image, const SaliencyOptions& options) {
  auto results = run_saliency(model, {image}, options);
  EXPECT_EQ(results.size(), 1u);
  return results.at(0);
}

TEST(Saliency, VanillaIsMaxOverChannelsOfAbsoluteGradient) {
  LoadedModel model = tiny_model(-0.2f);
  const cv::Mat image = random_image(1);
  const SaliencyResult s = run_one(model, image, SaliencyOptions{});
  BackpropOptions backprop;
  backprop.mode = BackpropMode::vanilla;
  const BackpropResult b = run_backprop(model, {image}, backprop).at(0);
  EXPECT_EQ(max_diff(s.gradient, b.gradient), 0.0);
  // Channels carry (gh, -gh, 0.5 gh): the max of the absolute values is |gh| = |R channel|.
  std::vector<cv::Mat> channels;
  cv::split(s.gradient, channels);
  EXPECT_LE(max_diff(s.map, cv::abs(channels[0])), 1e-7);
  EXPECT_GT(cv::norm(s.map, cv::NORM_INF), 0.0);
  EXPECT_EQ(s.target.index, b.target.index);
  EXPECT_EQ(s.top.front().index, b.top.front().index);
  EXPECT_STREQ(saliency_method_name(SaliencyOptions{}), "vanilla");
}

TEST(Saliency, SmoothGradWithoutNoiseIsTheVanillaGradientExactly) {
  LoadedModel model = tiny_model(-0.2f);
  const std::vector<cv::Mat> images = {random_image(2), random_image(3)};
  const auto vanilla = run_saliency(model, images, SaliencyOptions{});
  SaliencyOptions smooth;
  smooth.smooth_samples = 5;
  smooth.noise = 0.0f;
  smooth.chunk = 3;  // chunks straddle the two images
  const auto averaged = run_saliency(model, images, smooth);
  for (std::size_t i = 0; i < images.size(); ++i) {
    EXPECT_EQ(max_diff(averaged[i].gradient, vanilla[i].gradient), 0.0) << i;
    EXPECT_EQ(max_diff(averaged[i].map, vanilla[i].map), 0.0) << i;
  }
  EXPECT_STREQ(saliency_method_name(smooth), "smoothgrad");
}

TEST(Saliency, SmoothGradIsSeededAndAveragesNoisyGradients) {
  LoadedModel model = tiny_model(-0.2f);
  const cv::Mat image = random_image(4);
  SaliencyOptions options;
  options.smooth_samples = 12;
  options.noise = 0.2f;
  options.chunk = 5;
  options.seed = 1;
  const SaliencyResult a = run_one(model, image, options);
  const SaliencyResult b = run_one(model, image, options);
  EXPECT_EQ(max_diff(a.map, b.map), 0.0);
  EXPECT_EQ(max_diff(a.gradient, b.gradient), 0.0);
  options.chunk = 16;  // the chunk size changes nothing either
  EXPECT_LE(max_diff(run_one(model, image, options).gradient, a.gradient), 1e-7);
  options.seed = 2;
  const SaliencyResult c = run_one(model, image, options);
  EXPECT_GT(max_diff(a.map, c.map), 1e-3);
  // Noise moves argmaxes and ReLU kinks, so the average differs from the clean gradient.
  const SaliencyResult vanilla = run_one(model, image, SaliencyOptions{});
  EXPECT_GT(max_diff(a.gradient, vanilla.gradient), 1e-3);
  // SmoothGrad's map is the max over channels of |mean gradient|.
  std::vector<cv::Mat> channels;
  cv::split(a.gradient, channels);
  cv::Mat a0 = cv::abs(channels[0]), a1 = cv::abs(channels[1]), a2 = cv::abs(channels[2]);
  cv::Mat a01 = cv::max(a0, a1);
  cv::Mat expected = cv::max(a01, a2);
  EXPECT_LE(max_diff(a.map, expected), 1e-7);
}

TEST(Saliency, TargetIsFixedFromTheCleanImage) {
  LoadedModel model = tiny_model(-0.2f);
  for (unsigned seed = 10; seed < 15; ++seed) {
    const cv::Mat image = random_image(seed);
    const SaliencyResult vanilla = run_one(model, image, SaliencyOptions{});
    SaliencyOptions options;
    options.smooth_samples = 8;
    options.noise = 3.0f;  // noisy copies are classified all over the place
    const SaliencyResult smooth = run_one(model, image, options);
    EXPECT_EQ(smooth.target.index, vanilla.target.index);
    EXPECT_FLOAT_EQ(smooth.target.logit, vanilla.target.logit);
  }
}

// score(x) - score(baseline) for the zero baseline, through the library's own forward pass.
double score_difference(LoadedModel& model, const cv::Mat& image, int target) {
  SaliencyOptions options;
  options.target = std::to_string(target);
  const float at_x = run_one(model, image, options).target.logit;
  const float at_zero = run_one(model, cv::Mat::zeros(kSize, kSize, CV_32FC3), options).target.logit;
  return static_cast<double>(at_x) - at_zero;
}

TEST(Saliency, IntegratedGradientsCompleteExactlyOnAPositivelyHomogeneousNet) {
  // With no conv bias the net is linear along the path alpha * x (ReLU pattern and pooling argmax do
  // not change with alpha > 0), so any number of steps gives the exact integral.
  LoadedModel model = tiny_model(0.0f);
  for (unsigned seed = 20; seed < 23; ++seed) {
    const cv::Mat image = random_image(seed);
    SaliencyOptions options;
    options.integrated_steps = 3;
    const SaliencyResult r = run_one(model, image, options);
    const double total = cv::sum(r.gradient)[0] + cv::sum(r.gradient)[1] + cv::sum(r.gradient)[2];
    EXPECT_NEAR(total, score_difference(model, image, r.target.index), 1e-5) << seed;
  }
}

TEST(Saliency, IntegratedGradientsCompletenessErrorShrinksWithSteps) {
  // With a conv bias, ReLUs switch on part way along the path: the integrand is piecewise constant and
  // the midpoint rule converges like 1/steps.
  LoadedModel model = tiny_model(-0.3f);
  for (unsigned seed = 30; seed < 33; ++seed) {
    const cv::Mat image = random_image(seed);
    double previous = 1e9;
    for (int steps : {4, 32, 256}) {
      SaliencyOptions options;
      options.integrated_steps = steps;
      options.chunk = 50;
      const SaliencyResult r = run_one(model, image, options);
      const cv::Scalar sums = cv::sum(r.gradient);
      const double delta = score_difference(model, image, r.target.index);
      const double error = std::abs(sums[0] + sums[1] + sums[2] - delta);
      EXPECT_LE(error, (std::abs(delta) + 1.0) / steps) << "seed " << seed << " steps " << steps;
      EXPECT_LE(error, previous + 1e-6) << "seed " << seed << " steps " << steps;
      previous = error;
      // The map is the sum over channels of |attribution|.
      std::vector<cv::Mat> channels;
      cv::split(r.gradient, channels);
      EXPECT_LE(max_diff(r.map, cv::abs(channels[0]) + cv::abs(channels[1]) + cv::abs(channels[2])), 1e-6);
    }
    EXPECT_LE(previous, 1e-2 * (std::abs(score_difference(model, image, 0)) + 1.0));
  }
}

TEST(Saliency, BatchInvariant) {
  LoadedModel model = tiny_model(-0.2f);
  std::vector<cv::Mat> batch;
  for (unsigned i = 0; i < 8; ++i) batch.push_back(random_image(40 + i));
  SaliencyOptions vanilla, smooth, integrated;
  smooth.smooth_samples = 6;
  smooth.noise = 0.2f;
  smooth.seed = 5;
  smooth.chunk = 16;  // in the batch of 8, chunks hold parts of several images
  integrated.integrated_steps = 7;
  integrated.chunk = 10;
  for (const SaliencyOptions* options : {&vanilla, &smooth, &integrated}) {
    auto together = run_saliency(model, batch, *options);
    ASSERT_EQ(together.size(), 8u);
    for (unsigned i = 0; i < 8; ++i) {
      auto alone = run_saliency(model, {batch[i]}, *options);
      EXPECT_LE(max_diff(alone[0].map, together[i].map), 1e-6) << saliency_method_name(*options) << " " << i;
      EXPECT_LE(max_diff(alone[0].gradient, together[i].gradient), 1e-6) << saliency_method_name(*options) << " " << i;
    }
  }
}

TEST(Saliency, UsesStandardReluAndRestoresTheMode) {
  LoadedModel model = tiny_model(-0.2f);
  const cv::Mat image = random_image(50);
  const SaliencyResult expected = run_one(model, image, SaliencyOptions{});
  EXPECT_EQ(model.network().relu_mode(), ReluMode::standard);
  // A model someone left in guided mode still gets the true gradient, and is left as it was.
  model.network().set_relu_mode(ReluMode::guided);
  EXPECT_EQ(max_diff(run_one(model, image, SaliencyOptions{}).gradient, expected.gradient), 0.0);
  EXPECT_EQ(model.network().relu_mode(), ReluMode::guided);
  model.network().set_relu_mode(ReluMode::standard);
  // An error in the middle of the run (wrong input size) also restores it.
  SaliencyOptions smooth;
  smooth.smooth_samples = 2;
  EXPECT_THROW(run_saliency(model, {cv::Mat::zeros(3, 3, CV_32FC3)}, smooth), UsageError);
  EXPECT_EQ(model.network().relu_mode(), ReluMode::standard);
}

TEST(Saliency, BadOptionsAreUsageErrors) {
  LoadedModel model = tiny_model(-0.2f);
  const cv::Mat image = random_image(60);
  SaliencyOptions options;
  options.smooth_samples = 4;
  options.integrated_steps = 4;
  EXPECT_THROW(run_saliency(model, {image}, options), UsageError);
  options = {};
  options.smooth_samples = -1;
  EXPECT_THROW(run_saliency(model, {image}, options), UsageError);
  options = {};
  options.noise = -0.1f;
  EXPECT_THROW(run_saliency(model, {image}, options), UsageError);
  options = {};
  options.chunk = 0;
  EXPECT_THROW(run_saliency(model, {image}, options), UsageError);
  options = {};
  options.target = "c";
  EXPECT_THROW(run_saliency(model, {image}, options), UsageError);
  EXPECT_TRUE(run_saliency(model, {}, SaliencyOptions{}).empty());
}

}  // namespace
}  // namespace cnnvis
