#include "cnnvis/methods/score_cam.h"

#include <cmath>
#include <vector>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/core/runtime.h"
#include "cnnvis/models/architectures.h"
#include "cnnvis/models/network.h"
#include "cnnvis/methods/gradcam.h"
#include "tiny_models.h"

namespace cnnvis {
namespace {

using testing::tiny_conv_gap_model;

// The tiny network of tiny_models.h on a 2 x 2 input with a0 = relu(R), a1 = relu(G) and logits
// (gap(a0), gap(a1)). At 2 x 2 the corner-aligned upsampling to the input is the identity, so channel
// k's mask is a_k / max(a_k).
LoadedModel tiny() { return tiny_conv_gap_model({1, 0, 0, 0, 1, 0}, {0, 0}, {1, 0, 0, 1}, 2, {"r", "g"}); }

// pixels p0..p3 (row-major) of R, G, B -> 1 x 3 x 2 x 2
at::Tensor image(const std::vector<float>& r, const std::vector<float>& g) {
  at::Tensor x = at::zeros({1, 3, 2, 2});
  for (int p = 0; p < 4; ++p) {
    x[0][0][p / 2][p % 2] = r[p];
    x[0][1][p / 2][p % 2] = g[p];
  }
  return x;
}

ForwardResult clean_pass(const Network& net, const at::Tensor& x) {
  ForwardRequest request;
  request.taps = {"relu"};
  at::NoGradGuard no_grad;
  return net.forward(x, request);
}

TEST(ScoreCam, HandComputedWeightsAreTheSoftmaxOfTheMaskedScores) {
  LoadedModel model = tiny();
  const Network& net = model.network();
  // R = (4, 0, 0, 0), G = (0, 2, 2, 0): masks (1, 0, 0, 0) and (0, 1, 1, 0). The R mask keeps R only:
  // logits (1, 0); the G mask keeps G only: logits (0, 1).
  const at::Tensor x = image({4, 0, 0, 0}, {0, 2, 2, 0});
  const at::Tensor a = clean_pass(net, x).taps.at("relu");
  const at::Tensor logits = score_cam_logits(net, x, a, 8);
  ASSERT_EQ(logits.sizes(), (at::IntArrayRef{1, 2, 2}));
  EXPECT_NEAR(logits[0][0][0].item<float>(), 1.0f, 1e-6);
  EXPECT_NEAR(logits[0][0][1].item<float>(), 0.0f, 1e-6);
  EXPECT_NEAR(logits[0][1][0].item<float>(), 0.0f, 1e-6);
  EXPECT_NEAR(logits[0][1][1].item<float>(), 1.0f, 1e-6);
  // Class r: w = softmax(1, 0) = (e, 1) / (e + 1); cam = w0 a0 + w1 a1.
  const float w0 = std::exp(1.0f) / (std::exp(1.0f) + 1), w1 = 1 / (std::exp(1.0f) + 1);
  const at::Tensor cam = score_cam_map(logits, a, {0})[0];
  const std::vector<float> expected = {4 * w0, 2 * w1, 2 * w1, 0};
  for (int p = 0; p < 4; ++p) EXPECT_NEAR(cam[p / 2][p % 2].item<float>(), expected[p], 1e-5) << p;
  // Class g: the weights swap.
  const at::Tensor cam_g = score_cam_map(logits, a, {1})[0];
  EXPECT_NEAR(cam_g[0][0].item<float>(), 4 * w1, 1e-5);
  EXPECT_NEAR(cam_g[0][1].item<float>(), 2 * w0, 1e-5);
}

TEST(ScoreCam, ConstantMapsShareTheAllZeroMaskedInput) {
  LoadedModel model = tiny();
  const Network& net = model.network();
  // G = 0: a1 is constant, its mask is zero, so its masked input is all zeros (logits of a zero image).
  const at::Tensor x = image({4, 1, 0, 2}, {0, 0, 0, 0});
  const at::Tensor a = clean_pass(net, x).taps.at("relu");
  const at::Tensor logits = score_cam_logits(net, x, a, 8);
  at::NoGradGuard no_grad;
  const at::Tensor zero = net.forward(at::zeros({1, 3, 2, 2})).logits[0];
  EXPECT_TRUE(at::equal(logits[0][1], zero));
  // The varying channel's mask is R / 4: masked R = R^2 / 4 = (4, 0.25, 0, 1), gap 1.3125.
  EXPECT_NEAR(logits[0][0][0].item<float>(), 5.25f / 4, 1e-6);
}

TEST(ScoreCam, TheBatchSizeDoesNotChangeTheMapsAndImagesStayApart) {
  LoadedModel model = tiny();
  const Network& net = model.network();
  const at::Tensor x = at::cat({image({4, 0, 0, 0}, {0, 2, 2, 0}), image({1, 3, 0, 2}, {2, 0, 0, 0}),
                                image({0, 0, 0, 0}, {1, 1, 0, 0})});
  const at::Tensor a = clean_pass(net, x).taps.at("relu");
  const at::Tensor all = score_cam_logits(net, x, a, 16);
  std::vector<std::size_t> seen;
  const at::Tensor one = score_cam_logits(net, x, a, 1, [&](std::size_t done, std::size_t total, std::string_view) {
    seen.push_back(done);
    EXPECT_EQ(total, 6u);
  });
  EXPECT_TRUE(at::allclose(all, one, 0, 1e-6));
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back(), 6u);
  // Each image alone gives its own rows.
  for (int64_t i = 0; i < 3; ++i) {
    const at::Tensor alone = score_cam_logits(net, x.narrow(0, i, 1), a.narrow(0, i, 1), 4);
    EXPECT_TRUE(at::allclose(alone[0], all[i], 0, 1e-6)) << i;
  }
}

// With the CLI's batch-invariant kernels the masked inputs run on oneDNN's batched convolutions, in
// chunks that hold one image's only: an image's rows come out with the same bits alone or beside others,
// at 128 px, where the convolutions are large enough for oneDNN.
TEST(ScoreCam, ImagesKeepTheirBitsOnBatchedKernels) {
  at::manual_seed(3);
  auto net = build_fashion_vgg(10);
  net->initialize_parameters();
  net->set_training(false);
  const ScopedBatchInvariantKernels batch_invariant(true);
  const at::Tensor x = at::rand({3, 3, 128, 128});
  ForwardRequest request;
  request.taps = {"features.2"};  // the first ReLU: few channels, so few masked passes
  at::NoGradGuard no_grad;
  const at::Tensor a = net->forward(x, request).taps.at("features.2");
  const at::Tensor all = score_cam_logits(*net, x, a, 5);
  for (int64_t i = 0; i < 3; ++i) {
    const at::Tensor alone = score_cam_logits(*net, x.narrow(0, i, 1), a.narrow(0, i, 1), 5);
    EXPECT_TRUE(at::equal(alone[0], all[i])) << "image " << i;
  }
}

TEST(ScoreCam, RunCamsOffersItAsAGradientFreeMethod) {
  LoadedModel model = tiny();
  CamRequest request;
  request.methods = {parse_cam_method("scorecam")};
  request.targets = {"0"};
  cv::Mat input(2, 2, CV_32FC3, cv::Scalar(0, 0, 0));
  input.at<cv::Vec3f>(0, 0) = {4, 0, 0};
  input.at<cv::Vec3f>(0, 1) = {0, 2, 0};
  input.at<cv::Vec3f>(1, 0) = {0, 2, 0};
  const std::vector<ImageCams> cams = run_cams(model, {input}, request);
  ASSERT_EQ(cams.size(), 1u);
  const float w0 = std::exp(1.0f) / (std::exp(1.0f) + 1), w1 = 1 / (std::exp(1.0f) + 1);
  EXPECT_NEAR(cams[0].maps[0].cam_layer.at<float>(0, 0), 4 * w0, 1e-5);
  EXPECT_NEAR(cams[0].maps[0].cam_layer.at<float>(0, 1), 2 * w1, 1e-5);
  EXPECT_STREQ(cam_method_name(cams[0].maps[0].method), "scorecam");
  request.perturbation_batch = 0;
  EXPECT_THROW(run_cams(model, {input}, request), UsageError);
}

}  // namespace
}  // namespace cnnvis
