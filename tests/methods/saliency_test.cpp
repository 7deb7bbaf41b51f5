// Saliency (vanilla gradient, SmoothGrad, SmoothGrad-squared, VarGrad, integrated gradients, input x
// gradient) on the tiny net of backprop_test.cpp:
//   h = R - G + 0.5 B + b -> ReLU -> maxpool 2x2 -> ReLU -> linear (2 classes)
// and on 1x1 conv -> ReLU -> global average pool -> linear nets whose gradient is known in closed form.
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

// ---------------------------------------------------------------------------------------------------
// SmoothGrad-squared, VarGrad, input x gradient.

constexpr int kGapSize = 4;  // 16 pixels: the average pool's backward is exactly 1/16

// conv 1x1 (3 -> 2) -> ReLU -> GAP -> linear (2 -> 2, no bias), identity normalisation. With both conv
// biases 10 the ReLUs stay on for any input near [0, 1]: the net is linear, and the gradient of class 0
// at every pixel is g[ch] = (fc00 w0[ch] + fc01 w1[ch]) / 16 = ((2 + 2) / 16, (-2 + 1) / 16, (1 - 4) / 16)
// = (0.25, -0.0625, -0.1875), all exact in binary.
LoadedModel linear_gap_model() {
  return testing::tiny_conv_gap_model({1.0f, -1.0f, 0.5f, 0.5f, 0.25f, -1.0f}, {10.0f, 10.0f},
                                      {2.0f, 4.0f, 1.0f, 1.0f}, kGapSize, {"a", "b"});
}
const cv::Vec3f kLinearGradient(0.25f, -0.0625f, -0.1875f);

cv::Mat random_gap_image(unsigned seed) {
  cv::Mat image(kGapSize, kGapSize, CV_32FC3);
  cv::RNG rng(seed);
  rng.fill(image, cv::RNG::UNIFORM, 0.0, 1.0);
  return image;
}

SaliencyOptions method_options(SaliencyMethod method, int samples = 0, float noise = 0.15f, std::uint64_t seed = 3) {
  SaliencyOptions options;
  options.method = method;
  options.smooth_samples = samples;
  options.noise = noise;
  options.seed = seed;
  options.target = "0";
  options.chunk = 7;
  return options;
}

TEST(Saliency, InputXGradientIsInputTimesTheKnownGradient) {
  LoadedModel model = linear_gap_model();
  const cv::Mat image = random_gap_image(70);
  const SaliencyResult r = run_one(model, image, method_options(SaliencyMethod::input_x_gradient));
  EXPECT_STREQ(saliency_method_name(method_options(SaliencyMethod::input_x_gradient)), "input_x_gradient");
  for (int y = 0; y < kGapSize; ++y) {
    for (int x = 0; x < kGapSize; ++x) {
      const cv::Vec3f in = image.at<cv::Vec3f>(y, x), got = r.gradient.at<cv::Vec3f>(y, x);
      double sum = 0;
      for (int c = 0; c < 3; ++c) {
        EXPECT_FLOAT_EQ(got[c], in[c] * kLinearGradient[c]) << y << "," << x << " channel " << c;
        sum += std::abs(in[c] * kLinearGradient[c]);
      }
      EXPECT_NEAR(r.map.at<float>(y, x), sum, 1e-7) << y << "," << x;  // sum over channels of |x * g|
    }
  }
  // Exactly the input times the vanilla gradient of the same pass.
  SaliencyOptions vanilla;
  vanilla.target = "0";
  const SaliencyResult v = run_one(model, image, vanilla);
  EXPECT_EQ(max_diff(r.gradient, image.mul(v.gradient)), 0.0);
  EXPECT_EQ(r.target.index, 0);
}

TEST(Saliency, InputXGradientSumsToTheLogitOnAPositivelyHomogeneousNet) {
  // No conv bias: the tiny pool net is positively homogeneous of degree 1 up to its fc bias, so by
  // Euler's theorem sum(x * dy/dx) = y(x) - fc bias.
  const float fc_bias = 0.25f;
  LoadedModel model = tiny_model(0.0f, 7, fc_bias);
  for (unsigned seed = 71; seed < 74; ++seed) {
    const cv::Mat image = random_image(seed);
    SaliencyOptions options;
    options.method = SaliencyMethod::input_x_gradient;
    const SaliencyResult r = run_one(model, image, options);
    const cv::Scalar sums = cv::sum(r.gradient);
    const float bias = r.target.index == 0 ? fc_bias : -fc_bias;
    EXPECT_NEAR(sums[0] + sums[1] + sums[2], r.target.logit - bias, 1e-5) << seed;
  }
}

TEST(Saliency, SquaredAndVarianceOfAConstantGradientAreExact) {
  // The linear net's gradient is the same for every noisy copy: mean g^2 = g^2 and variance 0, exactly.
  LoadedModel model = linear_gap_model();
  const cv::Mat image = random_gap_image(75);
  const SaliencyResult sq = run_one(model, image, method_options(SaliencyMethod::smoothgrad_sq, 9, 0.3f));
  const SaliencyResult var = run_one(model, image, method_options(SaliencyMethod::vargrad, 9, 0.3f));
  for (int y = 0; y < kGapSize; ++y) {
    for (int x = 0; x < kGapSize; ++x) {
      for (int c = 0; c < 3; ++c) {
        EXPECT_EQ(sq.gradient.at<cv::Vec3f>(y, x)[c], kLinearGradient[c] * kLinearGradient[c]);
        EXPECT_EQ(var.gradient.at<cv::Vec3f>(y, x)[c], 0.0f);
      }
      EXPECT_EQ(sq.map.at<float>(y, x), 0.0625f);  // max over channels: 0.25^2
      EXPECT_EQ(var.map.at<float>(y, x), 0.0f);
    }
  }
  EXPECT_STREQ(saliency_method_name(method_options(SaliencyMethod::smoothgrad_sq)), "smoothgrad_sq");
  EXPECT_STREQ(saliency_method_name(method_options(SaliencyMethod::vargrad)), "vargrad");
}

TEST(Saliency, SquaredAndVarianceOfAnOnOffGradientByHand) {
  // One hidden unit a = R - G + 0.5 B (no bias) feeds class 0 with weight 2; the other is always off.
  // The gradient at a pixel is G = 2 (1, -1, 0.5) / 16 = (0.125, -0.125, 0.0625) where a > 0 and 0
  // elsewhere, so with f the fraction of noisy copies in which the pixel's unit is on:
  //   SmoothGrad G f, SmoothGrad-squared G^2 f, VarGrad G^2 f - (G f)^2 = G^2 f (1 - f).
  LoadedModel model = testing::tiny_conv_gap_model({1.0f, -1.0f, 0.5f, 0.0f, 0.0f, 0.0f}, {0.0f, -1.0f},
                                                   {2.0f, 0.0f, 0.0f, 0.0f}, kGapSize, {"a", "b"});
  const cv::Vec3f on(0.125f, -0.125f, 0.0625f);
  const cv::Mat image = random_gap_image(76);
  const int n = 40;
  const SaliencyResult mean = run_one(model, image, method_options(SaliencyMethod::smoothgrad, n, 0.5f));
  const SaliencyResult sq = run_one(model, image, method_options(SaliencyMethod::smoothgrad_sq, n, 0.5f));
  const SaliencyResult var = run_one(model, image, method_options(SaliencyMethod::vargrad, n, 0.5f));
  int mixed = 0;
  for (int y = 0; y < kGapSize; ++y) {
    for (int x = 0; x < kGapSize; ++x) {
      const double f = mean.gradient.at<cv::Vec3f>(y, x)[0] / on[0];
      EXPECT_NEAR(f * n, std::round(f * n), 1e-4) << y << "," << x;  // a count of copies
      if (f > 0.01 && f < 0.99) ++mixed;
      for (int c = 0; c < 3; ++c) {
        const double g = on[c];
        EXPECT_NEAR(mean.gradient.at<cv::Vec3f>(y, x)[c], g * f, 1e-7) << y << "," << x << " channel " << c;
        EXPECT_NEAR(sq.gradient.at<cv::Vec3f>(y, x)[c], g * g * f, 1e-7) << y << "," << x << " channel " << c;
        EXPECT_NEAR(var.gradient.at<cv::Vec3f>(y, x)[c], g * g * f * (1 - f), 1e-7) << y << "," << x << " channel " << c;
      }
      // Maps: max over channels of the statistic (|0.125| is the largest of |G|).
      EXPECT_NEAR(sq.map.at<float>(y, x), 0.015625 * f, 1e-7);
      EXPECT_NEAR(var.map.at<float>(y, x), 0.015625 * f * (1 - f), 1e-7);
    }
  }
  EXPECT_GE(mixed, 3) << "the noise should switch the unit on and off at several pixels";
}

TEST(Saliency, VarGradIsMeanSquareMinusSquaredMeanAndSeeded) {
  LoadedModel model = tiny_model(-0.2f);
  const cv::Mat image = random_image(77);
  SaliencyOptions base = method_options(SaliencyMethod::smoothgrad, 23, 0.25f, 11);
  base.target = "top";
  SaliencyOptions sq_options = base, var_options = base;
  sq_options.method = SaliencyMethod::smoothgrad_sq;
  var_options.method = SaliencyMethod::vargrad;
  const SaliencyResult mean = run_one(model, image, base);
  const SaliencyResult sq = run_one(model, image, sq_options);
  const SaliencyResult var = run_one(model, image, var_options);
  EXPECT_LE(max_diff(var.gradient, sq.gradient - mean.gradient.mul(mean.gradient)), 1e-6);
  EXPECT_GT(cv::norm(var.gradient, cv::NORM_INF), 1e-4);  // the noise does vary the gradient
  double lo = 0;
  cv::minMaxLoc(var.gradient.reshape(1), &lo);
  EXPECT_GE(lo, 0.0);
  // Same seed: the same bytes; chunking does not matter; another seed: another map.
  for (const SaliencyOptions& o : {sq_options, var_options}) {
    EXPECT_EQ(max_diff(run_one(model, image, o).map, o.method == SaliencyMethod::vargrad ? var.map : sq.map), 0.0);
    SaliencyOptions chunked = o;
    chunked.chunk = 23;
    EXPECT_LE(max_diff(run_one(model, image, chunked).gradient,
                       o.method == SaliencyMethod::vargrad ? var.gradient : sq.gradient), 1e-7);
    SaliencyOptions other = o;
    other.seed = 12;
    EXPECT_GT(max_diff(run_one(model, image, other).map, o.method == SaliencyMethod::vargrad ? var.map : sq.map), 1e-5);
  }
}

TEST(Saliency, NamedMethodsAndTheirCounts) {
  EXPECT_EQ(parse_saliency_method(""), SaliencyMethod::automatic);
  EXPECT_EQ(parse_saliency_method("smoothgrad-sq"), SaliencyMethod::smoothgrad_sq);
  EXPECT_EQ(parse_saliency_method("smoothgrad_sq"), SaliencyMethod::smoothgrad_sq);
  EXPECT_EQ(parse_saliency_method("input-x-gradient"), SaliencyMethod::input_x_gradient);
  EXPECT_EQ(parse_saliency_method("integrated"), SaliencyMethod::integrated);
  EXPECT_THROW(parse_saliency_method("gradcam"), UsageError);
  SaliencyOptions legacy;
  legacy.smooth_samples = 4;
  EXPECT_EQ(resolve_saliency_method(legacy), SaliencyMethod::smoothgrad);
  LoadedModel model = tiny_model(-0.2f);
  const cv::Mat image = random_image(78);
  // A noisy method named without a count uses kDefaultSaliencySamples copies.
  EXPECT_EQ(max_diff(run_one(model, image, method_options(SaliencyMethod::vargrad, 0)).map,
                     run_one(model, image, method_options(SaliencyMethod::vargrad, kDefaultSaliencySamples)).map),
            0.0);
  // A count the named method does not use is refused.
  SaliencyOptions bad = method_options(SaliencyMethod::vanilla, 5);
  EXPECT_THROW(run_saliency(model, {image}, bad), UsageError);
  bad = method_options(SaliencyMethod::input_x_gradient);
  bad.integrated_steps = 8;
  EXPECT_THROW(run_saliency(model, {image}, bad), UsageError);
  bad = method_options(SaliencyMethod::integrated, 5);
  EXPECT_THROW(validate_saliency_options(bad), UsageError);
}

}  // namespace
}  // namespace cnnvis
