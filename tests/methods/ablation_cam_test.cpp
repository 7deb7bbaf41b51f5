#include "cnnvis/methods/ablation_cam.h"

#include <vector>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/methods/gradcam.h"
#include "cnnvis/models/architectures.h"
#include "tiny_models.h"

namespace cnnvis {
namespace {

using testing::tiny_conv_gap_model;

// a0 = relu(R), a1 = relu(G) at "relu"; class "mix" = gap(a0) + 0.5 gap(a1), class "diff" = gap(a0) - gap(a1).
LoadedModel tiny() { return tiny_conv_gap_model({1, 0, 0, 0, 1, 0}, {0, 0}, {1, 0.5f, 1, -1}, 2, {"mix", "diff"}); }

struct Pass {
  at::Tensor x, a, logits;
};

// R = (4, 0, 0, 0), G = (0, 2, 2, 0) on a 2 x 2 input: gap(a0) = 1, gap(a1) = 1.
Pass clean(const Network& net) {
  at::Tensor x = at::zeros({1, 3, 2, 2});
  x[0][0][0][0] = 4;
  x[0][1][0][1] = 2;
  x[0][1][1][0] = 2;
  ForwardRequest request;
  request.taps = {"relu"};
  at::NoGradGuard no_grad;
  ForwardResult r = net.forward(x, request);
  return {x, r.taps.at("relu"), r.logits};
}

TEST(AblationCam, HandComputedRelativeDrops) {
  LoadedModel model = tiny();
  const Network& net = model.network();
  const Pass p = clean(net);
  const at::Tensor ablated = ablation_cam_logits(net, "relu", p.x, p.a, p.logits, 4);
  ASSERT_EQ(ablated.sizes(), (at::IntArrayRef{1, 2, 2}));
  // mix: y = 1.5; without a0 0.5, without a1 1: w = (2/3, 1/3); cam = (8/3, 2/3, 2/3, 0).
  EXPECT_NEAR(ablated[0][0][0].item<float>(), 0.5f, 1e-6);
  EXPECT_NEAR(ablated[0][1][0].item<float>(), 1.0f, 1e-6);
  const at::Tensor cam = ablation_cam_map(ablated, p.logits, p.a, {0})[0];
  const std::vector<float> expected = {8.0f / 3, 2.0f / 3, 2.0f / 3, 0};
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(cam[i / 2][i % 2].item<float>(), expected[i], 1e-5) << i;
}

TEST(AblationCam, AZeroScoreUsesTheDropItself) {
  LoadedModel model = tiny();
  const Network& net = model.network();
  const Pass p = clean(net);
  // diff: y = 0; without a0 -1 (drop 1), without a1 1 (drop -1): cam = relu(a0 - a1) = (4, 0, 0, 0), no NaN.
  const at::Tensor cam = ablation_cam_map(ablation_cam_logits(net, "relu", p.x, p.a, p.logits, 1), p.logits, p.a, {1})[0];
  EXPECT_FALSE(at::isnan(cam).any().item<bool>());
  const std::vector<float> expected = {4, 0, 0, 0};
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(cam[i / 2][i % 2].item<float>(), expected[i], 1e-5) << i;
}

TEST(AblationCam, ZeroChannelsNeedNoPassAndTheBatchSizeChangesNothing) {
  LoadedModel model = tiny();
  const Network& net = model.network();
  Pass p = clean(net);
  p.x = at::cat({p.x, p.x});
  p.a = at::cat({p.a, p.a * at::tensor({0.0f, 1.0f}).view({1, 2, 1, 1})});  // image 2: channel 0 all zero
  p.logits = at::cat({p.logits, p.logits});
  std::size_t first = 0;
  const at::Tensor one = ablation_cam_logits(net, "relu", p.x, p.a, p.logits, 1, [&](std::size_t done, std::size_t, std::string_view) {
    if (first == 0) first = done;
  });
  EXPECT_EQ(first, 2u);  // the zero channel counts as done before any pass (then one pass of one copy)
  EXPECT_TRUE(at::equal(one[1][0], p.logits[1]));
  EXPECT_TRUE(at::allclose(one, ablation_cam_logits(net, "relu", p.x, p.a, p.logits, 3), 0, 1e-6));
}

TEST(AblationCam, ALayerInsideABranchRunsTheWholeNetworkWithTheLayerReplaced) {
  at::manual_seed(9);
  auto net = build_googlenet(false);
  net->initialize_parameters();
  const std::string layer = "inception4c.branch4";  // 64 channels inside an Inception block
  EXPECT_FALSE(ablation_reruns_only_later_layers(*net, layer));
  EXPECT_TRUE(ablation_reruns_only_later_layers(*net, "inception4c"));
  at::NoGradGuard no_grad;
  const at::Tensor x = at::randn({1, 3, 64, 64});
  ForwardRequest request;
  request.taps = {layer};
  const ForwardResult r = net->forward(x, request);
  const at::Tensor a = r.taps.at(layer);
  const at::Tensor ablated = ablation_cam_logits(*net, layer, x, a, r.logits, 16);
  ASSERT_EQ(ablated.sizes(), (at::IntArrayRef{1, a.size(1), r.logits.size(1)}));
  // Row k: the logits with channel k of the branch zeroed, as one whole pass with that output computes them.
  for (int64_t k : {int64_t{0}, a.size(1) - 1}) {
    ForwardRequest replace;
    replace.taps = {layer};
    at::Tensor one = a.clone();
    one[0][k].zero_();
    replace.replacements[layer] = one;
    const at::Tensor expected = net->forward(x, replace).logits[0];
    if (a[0][k].ne(0).any().item<bool>()) {
      // Float rounding only: the pass held 16 copies, this one image (random logits reach about 100).
      const float scale = expected.abs().max().item<float>();
      EXPECT_LE((ablated[0][k] - expected).abs().max().item<float>(), 1e-5f * scale) << k;
    } else {
      EXPECT_TRUE(at::equal(ablated[0][k], r.logits[0])) << k;  // a zero channel: the clean logits, no pass
    }
  }
}

TEST(AblationCam, BadOptionsAreRefused) {
  LoadedModel model = tiny();
  const Pass p = clean(model.network());
  EXPECT_THROW(ablation_cam_logits(model.network(), "relu", p.x, p.a, p.logits, 0), UsageError);
  EXPECT_THROW(ablation_cam_logits(model.network(), "relu", p.x.narrow(1, 0, 1).squeeze(1), p.a, p.logits, 1),
               UsageError);
}

TEST(AblationCam, RunCamsOffersIt) {
  LoadedModel model = tiny();
  CamRequest request;
  request.methods = {parse_cam_method("ablationcam")};
  request.targets = {"mix"};
  cv::Mat input(2, 2, CV_32FC3, cv::Scalar(0, 0, 0));
  input.at<cv::Vec3f>(0, 0) = {4, 0, 0};
  input.at<cv::Vec3f>(0, 1) = {0, 2, 0};
  input.at<cv::Vec3f>(1, 0) = {0, 2, 0};
  const std::vector<ImageCams> cams = run_cams(model, {input}, request);
  EXPECT_NEAR(cams[0].maps[0].cam_layer.at<float>(0, 0), 8.0f / 3, 1e-5);
  EXPECT_NEAR(cams[0].maps[0].cam_layer.at<float>(1, 0), 2.0f / 3, 1e-5);
}

}  // namespace
}  // namespace cnnvis
