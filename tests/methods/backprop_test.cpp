// Vanilla gradient, guided backpropagation and deconvnet on a tiny network whose input gradient can be
// derived by hand:
//   h = R - G + 0.5 B + b   (1x1 conv, 3 -> 1 channel)
//   a = ReLU1(h); p = maxpool2x2(a); q = ReLU2(p); logits = V q (+ 0)
// d logit_c / d q = V[c, cell]; ReLU2 and ReLU1 apply the mode's rule; max pooling routes the gradient
// to the window's argmax (the first maximum in row-major order, also for all-zero windows); the conv
// spreads gh to the channels as (gh, -gh, 0.5 gh).
#include <array>
#include <cmath>
#include <stdexcept>

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include "cnnvis/core/errors.h"
#include "cnnvis/methods/backprop.h"
#include "cnnvis/models/layers.h"
#include "cnnvis/models/network.h"
#include "tiny_models.h"

namespace cnnvis {
namespace {

// Linear weights of the 2 classes over the pooled cells of a 4x4 input (2x2 cells, row-major).
const float kV4[2][4] = {{2.0f, -1.0f, 3.0f, 0.5f}, {-1.0f, 1.0f, 1.0f, -1.0f}};

LoadedModel tiny_model(int size, const float* linear, float conv_bias = 0.0f) {
  const int cells = (size / 2) * (size / 2);
  return testing::tiny_conv_pool_linear_model(size, std::vector<float>(linear, linear + 2 * cells), conv_bias, {0, 0});
}

// The hand-built 4x4 image: G = 0.2 and B = 0.1 everywhere, so h = R - 0.15.
//   window (0,0): h = .75 .15 / .35 .25  -> argmax (0,0), V0 = 2    every mode passes
//   window (0,1): h = .05 .65 / .45 .15  -> argmax (0,3), V0 = -1   negative: guided and deconv stop it
//   window (1,0): h <= 0 everywhere       -> p = 0, V0 = 3           only deconv passes, to (2,0)
//   window (1,1): h = -.15 .15 / .55 -.05 -> argmax (3,2), V0 = 0.5
cv::Mat hand_image() {
  const float r[4][4] = {{0.9f, 0.3f, 0.2f, 0.8f}, {0.5f, 0.4f, 0.6f, 0.3f},
                         {0.1f, 0.0f, 0.0f, 0.3f}, {0.05f, 0.1f, 0.7f, 0.1f}};
  cv::Mat image(4, 4, CV_32FC3);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) image.at<cv::Vec3f>(y, x) = cv::Vec3f(r[y][x], 0.2f, 0.1f);
  return image;
}

// Expected gradient from the gradient gh at h: channels (gh, -gh, 0.5 gh).
cv::Mat from_gh(const cv::Mat& gh) {
  cv::Mat out(gh.size(), CV_32FC3);
  for (int y = 0; y < gh.rows; ++y)
    for (int x = 0; x < gh.cols; ++x) {
      const float g = gh.at<float>(y, x);
      out.at<cv::Vec3f>(y, x) = cv::Vec3f(g, -g, 0.5f * g);
    }
  return out;
}

cv::Mat sparse_gh(int size, std::initializer_list<std::array<float, 3>> entries) {
  cv::Mat gh = cv::Mat::zeros(size, size, CV_32F);
  for (const auto& e : entries) gh.at<float>(static_cast<int>(e[0]), static_cast<int>(e[1])) = e[2];
  return gh;
}

double max_diff(const cv::Mat& a, const cv::Mat& b) { return cv::norm(a, b, cv::NORM_INF); }

BackpropResult run_one(LoadedModel& model, const cv::Mat& image, BackpropMode mode, const std::string& target = "top") {
  BackpropOptions options;
  options.mode = mode;
  options.target = target;
  auto results = run_backprop(model, {image}, options);
  EXPECT_EQ(results.size(), 1u);
  return results.at(0);
}

TEST(Backprop, HandComputedGradientsForTheThreeModes) {
  LoadedModel model = tiny_model(4, &kV4[0][0]);
  const cv::Mat image = hand_image();
  const BackpropResult vanilla = run_one(model, image, BackpropMode::vanilla);
  const BackpropResult guided = run_one(model, image, BackpropMode::guided);
  const BackpropResult deconv = run_one(model, image, BackpropMode::deconv);
  // logit_0 = 2 * .75 - 1 * .65 + 3 * 0 + .5 * .55 = 1.125 > logit_1 = -.75 + .65 + 0 - .55
  EXPECT_EQ(vanilla.target.index, 0);
  EXPECT_NEAR(vanilla.target.logit, 1.125f, 1e-5);
  EXPECT_EQ(vanilla.target.label, "a");

  EXPECT_LE(max_diff(vanilla.gradient, from_gh(sparse_gh(4, {{0, 0, 2.0f}, {0, 3, -1.0f}, {3, 2, 0.5f}}))), 1e-6);
  EXPECT_LE(max_diff(guided.gradient, from_gh(sparse_gh(4, {{0, 0, 2.0f}, {3, 2, 0.5f}}))), 1e-6);
  EXPECT_LE(max_diff(deconv.gradient, from_gh(sparse_gh(4, {{0, 0, 2.0f}, {2, 0, 3.0f}, {3, 2, 0.5f}}))), 1e-6);
  // Guided and vanilla differ exactly where a negative gradient reaches a positive ReLU input.
  EXPECT_GT(max_diff(vanilla.gradient, guided.gradient), 0.5);

  // magnitude = max over channels of |gradient| = |gh| here (|gh| >= |0.5 gh|)
  cv::Mat expected_magnitude = cv::abs(sparse_gh(4, {{0, 0, 2.0f}, {0, 3, -1.0f}, {3, 2, 0.5f}}));
  EXPECT_LE(max_diff(vanilla.magnitude, expected_magnitude), 1e-6);
  EXPECT_EQ(vanilla.gradient.type(), CV_32FC3);
  EXPECT_EQ(vanilla.magnitude.type(), CV_32F);
}

TEST(Backprop, ExplicitTargetClass) {
  LoadedModel model = tiny_model(4, &kV4[0][0]);
  const cv::Mat image = hand_image();
  // Class b: V1 = (-1, 1, 1, -1) over the windows.
  const BackpropResult vanilla = run_one(model, image, BackpropMode::vanilla, "b");
  const BackpropResult guided = run_one(model, image, BackpropMode::guided, "1");
  const BackpropResult deconv = run_one(model, image, BackpropMode::deconv, "b");
  EXPECT_EQ(vanilla.target.index, 1);
  EXPECT_EQ(vanilla.top.front().index, 0);  // the prediction is unchanged by the target
  EXPECT_LE(max_diff(vanilla.gradient, from_gh(sparse_gh(4, {{0, 0, -1.0f}, {0, 3, 1.0f}, {3, 2, -1.0f}}))), 1e-6);
  EXPECT_LE(max_diff(guided.gradient, from_gh(sparse_gh(4, {{0, 3, 1.0f}}))), 1e-6);
  EXPECT_LE(max_diff(deconv.gradient, from_gh(sparse_gh(4, {{0, 3, 1.0f}, {2, 0, 1.0f}}))), 1e-6);
}

// The same rules written out with loops, for random images of a larger net.
cv::Mat reference_gradient(const cv::Mat& image, const float* linear, float bias, int target, ReluMode mode) {
  const int size = image.rows, half = size / 2;
  cv::Mat h(size, size, CV_32F);
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      const cv::Vec3f v = image.at<cv::Vec3f>(y, x);
      h.at<float>(y, x) = v[0] - v[1] + 0.5f * v[2] + bias;
    }
  auto rule = [mode](float grad, float input) {
    if (mode == ReluMode::standard) return input > 0 ? grad : 0.0f;
    if (mode == ReluMode::guided) return input > 0 && grad > 0 ? grad : 0.0f;
    return grad > 0 ? grad : 0.0f;
  };
  cv::Mat gh = cv::Mat::zeros(size, size, CV_32F);
  for (int py = 0; py < half; ++py)
    for (int px = 0; px < half; ++px) {
      int best_y = 2 * py, best_x = 2 * px;
      float best = -1;
      for (int dy = 0; dy < 2; ++dy)
        for (int dx = 0; dx < 2; ++dx) {
          const float a = std::max(h.at<float>(2 * py + dy, 2 * px + dx), 0.0f);
          if (a > best) best = a, best_y = 2 * py + dy, best_x = 2 * px + dx;
        }
      const float gp = rule(linear[target * half * half + py * half + px], best);
      gh.at<float>(best_y, best_x) = rule(gp, h.at<float>(best_y, best_x));
    }
  return from_gh(gh);
}

cv::Mat random_image(int size, unsigned seed) {
  cv::Mat image(size, size, CV_32FC3);
  cv::RNG rng(seed);
  rng.fill(image, cv::RNG::UNIFORM, 0.0, 1.0);
  return image;
}

std::vector<float> random_linear(int cells, unsigned seed) {
  std::vector<float> v(2 * cells);
  cv::RNG rng(seed);
  for (float& w : v) w = static_cast<float>(rng.uniform(-1.0, 1.0));
  return v;
}

TEST(Backprop, MatchesLoopReferenceOnRandomImages) {
  const int size = 8;
  const std::vector<float> linear = random_linear(16, 7);
  const float bias = -0.2f;  // about a third of the h values are negative
  LoadedModel model = tiny_model(size, linear.data(), bias);
  for (unsigned seed = 0; seed < 5; ++seed) {
    const cv::Mat image = random_image(size, 100 + seed);
    for (auto [mode, relu] : {std::pair{BackpropMode::vanilla, ReluMode::standard},
                              std::pair{BackpropMode::guided, ReluMode::guided},
                              std::pair{BackpropMode::deconv, ReluMode::deconv}}) {
      for (int c = 0; c < 2; ++c) {
        const BackpropResult r = run_one(model, image, mode, std::to_string(c));
        EXPECT_LE(max_diff(r.gradient, reference_gradient(image, linear.data(), bias, c, relu)), 1e-6)
            << backprop_mode_name(mode) << " class " << c << " image " << seed;
      }
    }
  }
}

TEST(Backprop, BatchInvariant) {
  const int size = 8;
  const std::vector<float> linear = random_linear(16, 8);
  LoadedModel model = tiny_model(size, linear.data(), -0.2f);
  std::vector<cv::Mat> batch;
  for (unsigned i = 0; i < 8; ++i) batch.push_back(random_image(size, 200 + i));
  for (BackpropMode mode : {BackpropMode::vanilla, BackpropMode::guided, BackpropMode::deconv}) {
    BackpropOptions options;
    options.mode = mode;
    auto together = run_backprop(model, batch, options);
    ASSERT_EQ(together.size(), 8u);
    for (unsigned i = 0; i < 8; ++i) {
      auto alone = run_backprop(model, {batch[i]}, options);
      EXPECT_LE(max_diff(alone[0].gradient, together[i].gradient), 1e-6) << backprop_mode_name(mode) << " " << i;
      EXPECT_LE(max_diff(alone[0].magnitude, together[i].magnitude), 1e-6);
      EXPECT_EQ(alone[0].target.index, together[i].target.index);
    }
  }
}

TEST(Backprop, ReluModeRestoredAfterRunsAndErrors) {
  LoadedModel model = tiny_model(4, &kV4[0][0]);
  run_one(model, hand_image(), BackpropMode::guided);
  EXPECT_EQ(model.network().relu_mode(), ReluMode::standard);
  run_one(model, hand_image(), BackpropMode::deconv);
  EXPECT_EQ(model.network().relu_mode(), ReluMode::standard);
  // A wrongly sized input throws in the middle of the run, after the mode was switched.
  BackpropOptions options;
  options.mode = BackpropMode::guided;
  EXPECT_THROW(run_backprop(model, {random_image(5, 1)}, options), UsageError);
  EXPECT_EQ(model.network().relu_mode(), ReluMode::standard);
}

TEST(Backprop, WorksInsideANoGradScope) {
  LoadedModel model = tiny_model(4, &kV4[0][0]);
  at::NoGradGuard no_grad;
  const BackpropResult r = run_one(model, hand_image(), BackpropMode::vanilla);
  EXPECT_NEAR(r.gradient.at<cv::Vec3f>(0, 0)[0], 2.0f, 1e-6);
}

TEST(Backprop, BadRequestsAreUsageErrors) {
  LoadedModel model = tiny_model(4, &kV4[0][0]);
  BackpropOptions options;
  options.target = "2";
  EXPECT_THROW(run_backprop(model, {hand_image()}, options), UsageError);
  options.target = "zebra";
  EXPECT_THROW(run_backprop(model, {hand_image()}, options), UsageError);
  EXPECT_THROW(parse_backprop_mode("smooth"), UsageError);
  EXPECT_EQ(parse_backprop_mode("deconv"), BackpropMode::deconv);
  EXPECT_STREQ(backprop_mode_name(BackpropMode::guided), "guided");
  EXPECT_TRUE(run_backprop(model, {}, BackpropOptions{}).empty());
}

TEST(GradientDisplay, StandardisesClipsAndTruncates) {
  // Half -1, half +1: mean 0, std 1 -> 0.5 -+ 0.1 / (1 + 1e-5) -> uint8(255 * x) truncated.
  cv::Mat g(2, 2, CV_32FC3);
  g.at<cv::Vec3f>(0, 0) = {-1, 1, -1};
  g.at<cv::Vec3f>(0, 1) = {1, -1, 1};
  g.at<cv::Vec3f>(1, 0) = {-1, 1, -1};
  g.at<cv::Vec3f>(1, 1) = {1, -1, 1};
  cv::Mat d = gradient_to_display(g);
  ASSERT_EQ(d.type(), CV_8UC3);
  EXPECT_EQ(d.at<cv::Vec3b>(0, 0), cv::Vec3b(102, 152, 102));  // 102.0003 and 152.9997
  EXPECT_EQ(d.at<cv::Vec3b>(0, 1), cv::Vec3b(152, 102, 152));
  // A constant (e.g. all-zero) gradient is mid-grey, not NaN.
  cv::Mat zero = cv::Mat::zeros(3, 3, CV_32FC3);
  cv::Mat z = gradient_to_display(zero);
  EXPECT_EQ(z.at<cv::Vec3b>(1, 1), cv::Vec3b(127, 127, 127));
  // An outlier is clipped to 255 and the rest stay close to grey: mean 1, std sqrt(99), so the zeros
  // give 0.5 - 0.1 / sqrt(99) -> 124.94 -> 124.
  cv::Mat spike = cv::Mat::zeros(10, 10, CV_32FC3);
  spike.at<cv::Vec3f>(5, 5) = {100, 100, 100};
  cv::Mat s = gradient_to_display(spike);
  EXPECT_EQ(s.at<cv::Vec3b>(5, 5), cv::Vec3b(255, 255, 255));
  EXPECT_EQ(s.at<cv::Vec3b>(0, 0), cv::Vec3b(124, 124, 124));
}

}  // namespace
}  // namespace cnnvis
