#include "cnnvis/methods/full_grad.h"

#include <memory>
#include <vector>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/methods/gradcam.h"
#include "tiny_models.h"

namespace cnnvis {
namespace {

using testing::tiny_conv_gap_model;

TEST(FullGrad, ChannelsAreNormalisedThenResizedWithHalfPixelCentres) {
  at::Tensor m = at::tensor({2.0f, 4.0f, 2.0f, 4.0f}).view({1, 1, 2, 2});
  const at::Tensor out = normalise_and_resize_channels(m, 4, 4);
  ASSERT_EQ(out.sizes(), (at::IntArrayRef{1, 1, 4, 4}));
  // (m - 2) / 2 = (0, 1) per row; source x = (i + 0.5) / 2 - 0.5 clamped: 0, 0.25, 0.75, 1.
  const std::vector<float> row = {0, 0.25f, 0.75f, 1};
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) EXPECT_NEAR(out[0][0][y][x].item<float>(), row[x], 1e-6) << y << "," << x;
  // A constant channel becomes zeros, not NaN.
  EXPECT_EQ(normalise_and_resize_channels(at::full({1, 1, 2, 2}, 3.0f), 2, 2).abs().max().item<float>(), 0.0f);
}

TEST(FullGrad, BatchNormBiasIsWhatItAddsToZero) {
  auto root = std::make_unique<Sequential>("", "Tiny");
  auto* bn = root->add(std::make_unique<BatchNorm2d>("bn", 1));
  root->add(std::make_unique<Flatten>("flatten"));
  root->add(std::make_unique<Linear>("fc", 4, 2));
  bn->weight = at::full({1}, 2.0f);
  bn->bias = at::full({1}, 1.0f);
  bn->running_mean = at::full({1}, 3.0f);
  bn->running_var = at::full({1}, static_cast<float>(4.0 - bn->eps));
  Network net("tiny", std::move(root), 2);
  const std::vector<BiasedLayer> layers = biased_layers(net);
  ASSERT_EQ(layers.size(), 1u);
  EXPECT_EQ(layers[0].name, "bn");
  EXPECT_NEAR(layers[0].bias.item<float>(), 1 - 3 * 2 / 2.0f, 1e-6);  // beta - mean * gamma / sqrt(var + eps)
}

// a0 = relu(R + 0.5), a1 = relu(G - 1); class 0 = gap(a0). R = (1, 2, 0, -1), G = (3, 0, 0, 0), B = 0:
// z0 = (1.5, 2.5, 0.5, -0.5), dy/dz0 = 0.25 (z0 > 0) = dy/dR, dy/dz1 = 0 (class 0 ignores a1).
// Input term: |R dy/dR| = (0.25, 0.5, 0, 0) -> normalised (0.5, 1, 0, 0); G and B terms are zero.
// Bias term: |0.5 dy/dz0| = (0.125, 0.125, 0.125, 0) -> (1, 1, 1, 0). FullGrad = (1.5, 2, 1, 0).
TEST(FullGrad, HandComputedOnATinyNetwork) {
  LoadedModel model = tiny_conv_gap_model({1, 0, 0, 0, 1, 0}, {0.5f, -1}, {1, 0, 0, 1}, 2, {"a", "b"});
  cv::Mat input(2, 2, CV_32FC3, cv::Scalar(0, 0, 0));
  input.at<cv::Vec3f>(0, 0) = {1, 3, 0};
  input.at<cv::Vec3f>(0, 1) = {2, 0, 0};
  input.at<cv::Vec3f>(1, 1) = {-1, 0, 0};
  CamRequest request;
  request.methods = {parse_cam_method("fullgrad"), CamMethod::gradcam};
  request.targets = {"a"};
  const std::vector<ImageCams> cams = run_cams(model, {input}, request);
  ASSERT_EQ(cams[0].maps.size(), 2u);
  const CamMap& map = cams[0].maps[0];
  EXPECT_EQ(map.layer, "input");
  const std::vector<float> expected = {1.5f, 2, 1, 0};
  ASSERT_EQ(map.cam_layer.size(), cv::Size(2, 2));
  for (int p = 0; p < 4; ++p) EXPECT_NEAR(map.cam_layer.at<float>(p / 2, p % 2), expected[p], 1e-5) << p;
  // Grad-CAM in the same request (whose backward now runs to the input) is unchanged: a0 weighted by 0.25.
  EXPECT_NEAR(cams[0].maps[1].cam_layer.at<float>(0, 1), 0.25f * 2.5f, 1e-6);
}

TEST(FullGrad, ANetworkWithoutBiasesIsRefused) {
  auto root = std::make_unique<Sequential>("", "Tiny");
  root->add(std::make_unique<Conv2d>("conv", 3, 1, 1, 1, 0, false));
  Network net("tiny", std::move(root), 1);
  EXPECT_THROW(biased_layers(net), UsageError);
}

}  // namespace
}  // namespace cnnvis
