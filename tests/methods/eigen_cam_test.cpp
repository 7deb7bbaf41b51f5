#include "cnnvis/methods/eigen_cam.h"

#include <cmath>
#include <vector>

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include "cnnvis/methods/gradcam.h"
#include "tiny_models.h"

namespace cnnvis {
namespace {

// 1 x 2 x 3 x 3 activations whose channels are a0 = x0 * t and a1 = x1 * t over the positions, t = 0..8.
at::Tensor two_channel(float x0, float x1, const std::vector<float>& t) {
  at::Tensor out = at::zeros({1, 2, 3, 3});
  for (int p = 0; p < 9; ++p) {
    out[0][0][p / 3][p % 3] = x0 * t[p];
    out[0][1][p / 3][p % 3] = x1 * t[p];
  }
  return out;
}

const std::vector<float> kRamp = {0, 1, 2, 3, 4, 5, 6, 7, 8};

TEST(EigenCam, RankOneActivationsProjectOntoTheirDirection) {
  // Centred rows are (t - 4) * (1, 2): the first component is (1, 2) / sqrt(5), so the projection is
  // (t - 4) * sqrt(5), with the sign of the channel mean 1.5 t.
  const at::Tensor p = first_component_projection(two_channel(1, 2, kRamp));
  ASSERT_EQ(p.sizes(), (at::IntArrayRef{1, 3, 3}));
  for (int i = 0; i < 9; ++i) EXPECT_NEAR(p[0][i / 3][i % 3].item<float>(), (kRamp[i] - 4) * std::sqrt(5.0f), 1e-5) << i;
}

TEST(EigenCamSign, FollowsTheChannelMeanNotTheDecomposition) {
  // The same direction with both channels negated: the channel mean now falls along t, so the map does.
  const at::Tensor p = first_component_projection(two_channel(-1, -2, kRamp));
  for (int i = 0; i < 9; ++i) EXPECT_NEAR(p[0][i / 3][i % 3].item<float>(), (4 - kRamp[i]) * std::sqrt(5.0f), 1e-5) << i;
}

TEST(EigenCam, TheStrongerVarianceWins) {
  // Channel 0 varies along t (variance 60 / 9), channel 1 by +-0.1 in a pattern uncorrelated with t:
  // the covariance is diagonal, so the first component is channel 0 exactly.
  at::Tensor a = two_channel(1, 0, kRamp);
  const std::vector<float> s = {0.1f, -0.1f, 0.1f, -0.1f, 0.0f, -0.1f, 0.1f, -0.1f, 0.1f};  // sum 0, sum s*t = 0
  for (int p = 0; p < 9; ++p) a[0][1][p / 3][p % 3] = s[p];
  const at::Tensor p = first_component_projection(a);
  for (int i = 0; i < 9; ++i) EXPECT_NEAR(p[0][i / 3][i % 3].item<float>(), kRamp[i] - 4, 1e-5) << i;
}

TEST(EigenCam, ConstantActivationsGiveZerosAndEachImageIsItsOwn) {
  at::Tensor a = at::cat({at::full({1, 2, 3, 3}, 2.5f), two_channel(1, 2, kRamp)}, 0);
  const at::Tensor p = first_component_projection(a);
  EXPECT_EQ(p[0].abs().max().item<float>(), 0.0f);
  EXPECT_TRUE(at::equal(p[1], first_component_projection(two_channel(1, 2, kRamp))[0]));
  EXPECT_THROW(first_component_projection(at::zeros({2, 3})), std::exception);
}

// The tiny network of tiny_models.h: a0 = relu(R + b), a1 = relu(G - B + b) at the layer "relu";
// logit_c = sum_k W[c][k] mean(a_k), so d logit_c / d a_k = W[c][k] / (h w) everywhere.
const std::vector<float> kFc = {2, -1, -1, 3, 0.5f, 0.5f};  // 3 classes x 2 channels

// The first principal component's projection of a 2-channel map by hand: the 2 x 2 covariance's
// leading eigenvector in closed form, the sign by the channel mean, then ReLU.
cv::Mat hand_eigen_map(const cv::Mat& c0, const cv::Mat& c1) {
  const double m0 = cv::mean(c0)[0], m1 = cv::mean(c1)[0];
  cv::Mat d0 = c0 - m0, d1 = c1 - m1;
  const double sxx = d0.dot(d0), syy = d1.dot(d1), sxy = d0.dot(d1);
  const double lambda = 0.5 * (sxx + syy) + std::sqrt(0.25 * (sxx - syy) * (sxx - syy) + sxy * sxy);
  double vx = sxy, vy = lambda - sxx;  // (S - lambda I) v = 0
  if (std::abs(vx) + std::abs(vy) < 1e-12) {
    vx = sxx >= syy ? 1 : 0;
    vy = sxx >= syy ? 0 : 1;
  }
  const double norm = std::sqrt(vx * vx + vy * vy);
  cv::Mat projection = d0 * (vx / norm) + d1 * (vy / norm);
  cv::Mat strength = (c0 + c1) * 0.5;
  if (projection.dot(strength - cv::mean(strength)[0]) < 0) projection = -projection;
  return cv::max(projection, 0.0);
}

TEST(EigenCam, OnATinyNetworkMatchesTheHandComputedComponents) {
  constexpr int kSize = 6;
  LoadedModel model = testing::tiny_conv_gap_model({1, 0, 0, 0, 1, -1}, {0, 0}, kFc, kSize, {"a", "b", "c"});
  cv::Mat image(kSize, kSize, CV_32FC3);
  cv::RNG rng(5);
  rng.fill(image, cv::RNG::UNIFORM, 0.0, 1.0);
  std::vector<cv::Mat> rgb;
  cv::split(image, rgb);
  const cv::Mat a0 = cv::max(rgb[0], 0.0), a1 = cv::max(rgb[1] - rgb[2], 0.0);
  cv::Mat a0d, a1d;
  a0.convertTo(a0d, CV_64F);
  a1.convertTo(a1d, CV_64F);

  CamRequest request;
  request.methods = {CamMethod::eigencam, CamMethod::eigengradcam};
  request.targets = {"0", "1"};
  const std::vector<ImageCams> cams = run_cams(model, {image}, request);
  ASSERT_EQ(cams[0].maps.size(), 4u);  // per target: eigencam, eigengradcam
  const cv::Mat eigen = hand_eigen_map(a0d, a1d);
  for (int t = 0; t < 2; ++t) {
    const CamMap& e = cams[0].maps[static_cast<std::size_t>(2 * t)];
    const CamMap& eg = cams[0].maps[static_cast<std::size_t>(2 * t + 1)];
    ASSERT_EQ(e.method, CamMethod::eigencam);
    ASSERT_EQ(eg.method, CamMethod::eigengradcam);
    cv::Mat ours;
    e.cam_layer.convertTo(ours, CV_64F);
    EXPECT_LE(cv::norm(ours, eigen, cv::NORM_INF), 1e-5) << "eigencam, class " << t;  // the same for every class
    // eigengradcam decomposes g * a: channel k scaled by W[t][k] / (h w).
    const double area = kSize * kSize;
    const cv::Mat expected = hand_eigen_map(a0d * (kFc[2 * t] / area), a1d * (kFc[2 * t + 1] / area));
    eg.cam_layer.convertTo(ours, CV_64F);
    EXPECT_LE(cv::norm(ours, expected, cv::NORM_INF), 1e-6) << "eigengradcam, class " << t;
    EXPECT_GT(cv::norm(expected, cv::NORM_INF), 0) << "degenerate case, class " << t;
  }
}

}  // namespace
}  // namespace cnnvis
