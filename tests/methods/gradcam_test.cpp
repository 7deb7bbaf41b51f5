// Grad-CAM and Grad-CAM++ on a tiny network where the answer can be computed by hand: with global
// average pooling and one linear layer, the gradient of logit c at the last activation A is the constant
// W[c,k] / (h*w) per channel, so Grad-CAM = ReLU(sum_k W[c,k]/(hw) A_k) (= CAM up to scale).
#include <cmath>

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include "cnnvis/core/errors.h"
#include "cnnvis/methods/gradcam.h"
#include "cnnvis/models/layers.h"
#include "cnnvis/models/network.h"
#include "tiny_models.h"

namespace cnnvis {
namespace {

constexpr int kSize = 8;

// conv 1x1 (3 -> 2 channels) -> ReLU -> GAP -> flatten -> linear (2 -> 3 classes)
LoadedModel tiny_model(float conv_bias = 0.0f) {
  return testing::tiny_conv_gap_model({1, 0, 0, 0, 1, -1}, {conv_bias, conv_bias}, {2, -1, -1, 3, 0.5f, 0.5f}, kSize,
                                      {"a", "b", "c"});
}

cv::Mat random_image(unsigned seed) {
  cv::Mat image(kSize, kSize, CV_32FC3);
  cv::RNG rng(seed);
  rng.fill(image, cv::RNG::UNIFORM, 0.0, 1.0);
  return image;
}

// Channel activations of the tiny net, by hand: A0 = relu(R + b), A1 = relu(G - B + b).
std::vector<cv::Mat> activations(const cv::Mat& image, float bias) {
  std::vector<cv::Mat> rgb;
  cv::split(image, rgb);
  cv::Mat a0 = cv::max(rgb[0] + bias, 0.0), a1 = cv::max(rgb[1] - rgb[2] + bias, 0.0);
  return {a0, a1};
}

cv::Mat normalise(const cv::Mat& m) {
  double lo, hi;
  cv::minMaxLoc(m, &lo, &hi);
  return (m - lo) / (hi - lo + 1e-7);
}

TEST(GradCam, MatchesHandComputedCamForEveryClass) {
  LoadedModel model = tiny_model();
  const float w[3][2] = {{2, -1}, {-1, 3}, {0.5f, 0.5f}};
  cv::Mat image = random_image(1);
  auto a = activations(image, 0);
  for (int c = 0; c < 3; ++c) {
    GradCamOptions options;
    options.target = std::to_string(c);
    auto results = run_gradcam(model, {image}, options);
    ASSERT_EQ(results.size(), 1u);
    const double hw = kSize * kSize;
    cv::Mat expected = cv::max(a[0] * (w[c][0] / hw) + a[1] * (w[c][1] / hw), 0.0);
    EXPECT_LE(cv::norm(results[0].cam_layer, expected, cv::NORM_INF), 1e-6) << "class " << c;
    EXPECT_LE(cv::norm(results[0].cam, normalise(expected), cv::NORM_INF), 1e-5) << "class " << c;
    EXPECT_EQ(results[0].target.index, c);
    EXPECT_EQ(results[0].target.label, std::string(1, "abc"[c]));
  }
}

TEST(GradCam, PlusPlusMatchesClosedForm) {
  LoadedModel model = tiny_model();
  const float w[3][2] = {{2, -1}, {-1, 3}, {0.5f, 0.5f}};
  cv::Mat image = random_image(2);
  auto a = activations(image, 0);
  const int c = 1;
  GradCamOptions options;
  options.method = CamMethod::gradcam_plus_plus;
  options.target = "b";
  auto r = run_gradcam(model, {image}, options);
  const double hw = kSize * kSize;
  cv::Mat expected = cv::Mat::zeros(kSize, kSize, CV_32F);
  for (int k = 0; k < 2; ++k) {
    const double g = w[c][k] / hw;
    const double sum_a = cv::sum(a[k])[0];
    const double alpha = g == 0 ? 0 : g * g / (2 * g * g + sum_a * g * g * g + 1e-7);
    const double weight = hw * std::max(g, 0.0) * alpha;  // sum over the map of relu(g) * alpha
    expected += a[k] * weight;
  }
  expected = cv::max(expected, 0.0);
  EXPECT_LE(cv::norm(r[0].cam_layer, expected, cv::NORM_INF), 1e-5 * (1 + cv::norm(expected, cv::NORM_INF)));
}

// On the tiny net every gradient g_k is the constant W[c,k]/hw, which gives each method a closed form.
TEST(GradCam, FamilyMatchesClosedForms) {
  LoadedModel model = tiny_model();
  const float w[3][2] = {{2, -1}, {-1, 3}, {0.5f, 0.5f}};
  cv::Mat image = random_image(6);
  auto a = activations(image, 0);
  const double hw = kSize * kSize;
  const int c = 0;
  CamRequest request;
  request.methods = {CamMethod::xgradcam, CamMethod::layercam, CamMethod::hirescam, CamMethod::cam};
  request.targets = {"0"};
  auto r = run_cams(model, {image}, request);
  ASSERT_EQ(r[0].maps.size(), 4u);
  cv::Mat xgrad = cv::Mat::zeros(kSize, kSize, CV_32F), layer = xgrad.clone(), hires = xgrad.clone(), cam = xgrad.clone();
  for (int k = 0; k < 2; ++k) {
    const double g = w[c][k] / hw;
    const double sum_a = cv::sum(a[k])[0];
    xgrad += a[k] * (g * sum_a / (sum_a + 1e-7));  // sum(g A) / sum(A)
    layer += a[k] * std::max(g, 0.0);
    hires += a[k] * g;
    cam += a[k] * w[c][k];
  }
  const cv::Mat expected[4] = {cv::max(xgrad, 0.0), cv::max(layer, 0.0), cv::max(hires, 0.0), cv::max(cam, 0.0)};
  for (int m = 0; m < 4; ++m) {
    const double scale = 1 + cv::norm(expected[m], cv::NORM_INF);
    EXPECT_LE(cv::norm(r[0].maps[m].cam_layer, expected[m], cv::NORM_INF), 1e-5 * scale)
        << cam_method_name(r[0].maps[m].method);
  }
}

TEST(GradCam, SeveralTargetsFromOnePassEqualSeparateRuns) {
  LoadedModel model = tiny_model();
  std::vector<cv::Mat> batch = {random_image(20), random_image(21), random_image(22)};
  CamRequest request;
  request.methods = {CamMethod::gradcam, CamMethod::gradcam_plus_plus};
  request.top_k = 3;
  auto together = run_cams(model, batch, request);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    ASSERT_EQ(together[i].maps.size(), 6u);  // 3 targets x 2 methods
    for (const CamMap& map : together[i].maps) {
      GradCamOptions single;
      single.method = map.method;
      single.target = std::to_string(map.target.index);
      auto alone = run_gradcam(model, {batch[i]}, single);
      EXPECT_LE(cv::norm(alone[0].cam, map.cam, cv::NORM_INF), 1e-6) << i << " " << map.target.index;
    }
    // The top-3 targets come in rank order.
    for (int k = 0; k < 3; ++k) EXPECT_EQ(together[i].maps[2 * k].target.index, together[i].top[k].index);
  }
}

TEST(GradCam, CamNeedsAGlobalPoolLinearHead) {
  LoadedModel model = tiny_model();
  CamRequest request;
  request.methods = {CamMethod::cam};
  request.layers = {"conv"};  // conv -> relu -> gap: a ReLU sits between, so CAM does not apply
  EXPECT_THROW(run_cams(model, {random_image(7)}, request), UsageError);
  EXPECT_THROW(parse_cam_method("no-such-cam"), UsageError);
}

TEST(GradCam, TopTargetIsTheArgmax) {
  LoadedModel model = tiny_model();
  cv::Mat image = random_image(3);
  GradCamOptions options;
  auto r = run_gradcam(model, {image}, options);
  EXPECT_EQ(r[0].target.index, r[0].top.front().index);
  EXPECT_NEAR(r[0].target.probability, r[0].top.front().probability, 1e-7);
}

TEST(GradCam, AllZeroMapStaysZeroWithoutNaN) {
  LoadedModel model = tiny_model(-10.0f);  // every activation is zero after the ReLU
  auto r = run_gradcam(model, {random_image(4)}, GradCamOptions{});
  EXPECT_EQ(cv::countNonZero(r[0].cam), 0);
  EXPECT_TRUE(cv::checkRange(r[0].cam));  // no NaN / Inf
}

TEST(GradCam, BatchInvariant) {
  LoadedModel model = tiny_model();
  std::vector<cv::Mat> batch;
  for (unsigned i = 0; i < 8; ++i) batch.push_back(random_image(10 + i));
  auto together = run_gradcam(model, batch, GradCamOptions{});
  for (unsigned i = 0; i < 8; ++i) {
    auto alone = run_gradcam(model, {batch[i]}, GradCamOptions{});
    EXPECT_LE(cv::norm(alone[0].cam, together[i].cam, cv::NORM_INF), 1e-6) << i;
  }
}

TEST(GradCam, BadRequestsAreUsageErrors) {
  LoadedModel model = tiny_model();
  cv::Mat image = random_image(5);
  GradCamOptions options;
  options.target = "7";
  EXPECT_THROW(run_gradcam(model, {image}, options), UsageError);
  options.target = "zebra";
  EXPECT_THROW(run_gradcam(model, {image}, options), UsageError);
  options.target = "top";
  options.layer = "nope";
  EXPECT_THROW(run_gradcam(model, {image}, options), UsageError);
  options.layer = "fc";  // not spatial
  EXPECT_THROW(run_gradcam(model, {image}, options), UsageError);
}

}  // namespace
}  // namespace cnnvis
