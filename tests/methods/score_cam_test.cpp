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

// Sparse maps: each channel of a real activation is kept only inside a box of its own (sizes from one cell
// to most of the grid, some at the borders), so its mask is zero outside a box of the input. Those masked
// inputs run on the incremental engine and give the logits of whole passes up to rounding.
TEST(ScoreCam, SparseMasksGiveTheLogitsOfWholePasses) {
  at::manual_seed(5);
  auto net = build_fashion_vgg(10);
  net->initialize_parameters();
  net->set_training(false);
  const at::Tensor x = at::rand({2, 3, 96, 96});
  ForwardRequest request;
  request.taps = {"features.10"};
  at::NoGradGuard no_grad;
  at::Tensor a = net->forward(x, request).taps.at("features.10").clone();
  const int64_t channels = a.size(1), h = a.size(2), w = a.size(3);
  ASSERT_GE(h, 8);
  for (int64_t i = 0; i < a.size(0); ++i) {
    for (int64_t k = 0; k < channels; ++k) {
      const int64_t bh = 1 + (k * 3 + i) % (h - 1), bw = 1 + (k * 5 + 2 * i) % (w - 1);
      const int64_t y = (k * 7 + i) % (h - bh + 1), x0 = (k * 11) % (w - bw + 1);
      at::Tensor keep = at::zeros({h, w});
      keep.narrow(0, y, bh).narrow(1, x0, bw).fill_(1);
      a[i][k] = (a[i][k] + 0.1) * keep;  // positive in the box, so the support is the whole box
    }
  }
  ScoreCamStats sparse_stats, whole_stats;
  const at::Tensor sparse = score_cam_logits(*net, x, a, 6, {}, ScoreCamOptions{true}, &sparse_stats);
  const at::Tensor whole = score_cam_logits(*net, x, a, 6, {}, ScoreCamOptions{false}, &whole_stats);
  EXPECT_GT(sparse_stats.incremental_inputs, static_cast<std::size_t>(channels));  // most of both images'
  EXPECT_GT(sparse_stats.whole_inputs, 0u);                                        // the large boxes
  EXPECT_EQ(whole_stats.incremental_inputs, 0u);
  EXPECT_EQ(whole_stats.whole_inputs, static_cast<std::size_t>(a.size(0) * channels));
  const double scale = whole.abs().max().item<double>();
  EXPECT_LT((sparse - whole).abs().max().item<double>(), 1e-5 * scale + 1e-6);
  // A chunk's bits depend on the image alone, as on the whole-pass path.
  const at::Tensor alone = score_cam_logits(*net, x.narrow(0, 1, 1), a.narrow(0, 1, 1), 6);
  EXPECT_TRUE(at::equal(alone[0], sparse[1]));
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
