#include "cnnvis/methods/lrp.h"

#include <memory>
#include <vector>

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include "cnnvis/core/errors.h"
#include "cnnvis/methods/backprop.h"
#include "cnnvis/models/architectures.h"
#include "cnnvis/models/layers.h"
#include "cnnvis/models/network.h"
#include "tiny_models.h"

namespace cnnvis {
namespace {

// conv 1x1 (2 -> 1, weights (2, -1), no bias) -> flatten -> linear (1 -> 1, weight 1, no bias) on a
// 1 x 1 input x = (3, 1): the conv gives z = 5 and so does the logit.
std::unique_ptr<Network> two_input_network() {
  auto root = std::make_unique<Sequential>("", "Tiny");
  auto* conv = root->add(std::make_unique<Conv2d>("conv", 2, 1, 1, 1, 0, false));
  root->add(std::make_unique<Flatten>("flatten"));
  auto* fc = root->add(std::make_unique<Linear>("fc", 1, 1));
  conv->weight = at::tensor({2.0f, -1.0f}).view({1, 2, 1, 1});
  fc->weight = at::ones({1, 1});
  fc->bias = at::zeros({1});
  auto net = std::make_unique<Network>("tiny", std::move(root), 1);
  net->set_parameters_trainable(false);
  return net;
}

at::Tensor relevance_of(const Network& net, LrpPreset preset, const at::Tensor& x) {
  LrpOptions options;
  options.preset = preset;
  options.epsilon = 1e-9;
  options.low = at::zeros({1, 2, 1, 1});
  options.high = at::full({1, 2, 1, 1}, 4.0f);
  return lrp_relevance(net, x, at::zeros({x.size(0)}, at::kLong), options);
}

const at::Tensor kX = at::tensor({3.0f, 1.0f}).view({1, 2, 1, 1});

void expect_relevance(const at::Tensor& r, float a, float b) {
  EXPECT_NEAR(r[0][0][0][0].item<float>(), a, 1e-5);
  EXPECT_NEAR(r[0][1][0][0].item<float>(), b, 1e-5);
}

TEST(Lrp, EpsilonRuleIsInputTimesWeightShare) {
  // R = 5 at the conv output; epsilon: R_i = x_i w_i R / z = (6, -1).
  expect_relevance(relevance_of(*two_input_network(), LrpPreset::epsilon, kX), 6, -1);
}

TEST(Lrp, ZPlusKeepsOnlyPositiveContributions) {
  // z+ = 2 * 3 = 6 (the negative weight on a positive input is left out): R_i = x_i w+_i * 5 / 6 = (5, 0).
  expect_relevance(relevance_of(*two_input_network(), LrpPreset::epsilon_plus, kX), 5, 0);
}

TEST(Lrp, FlatSpreadsEvenlyOverTheWindow) {
  // The first (only) conv under epsilon-plus-flat: two inputs in the window, 5 / 2 each.
  expect_relevance(relevance_of(*two_input_network(), LrpPreset::epsilon_plus_flat, kX), 2.5f, 2.5f);
}

TEST(Lrp, ZBoxUsesTheInputBounds) {
  // l = 0, h = 4: z = W x - W+ l - W- h = 5 + 4 = 9; R = (x W - l W+ - h W-) * 5 / 9 = (30, 15) / 9.
  expect_relevance(relevance_of(*two_input_network(), LrpPreset::epsilon_plus_box, kX), 30.0f / 9, 15.0f / 9);
}

// conv 3x3 -> relu -> max pool -> [Inception-like concat of a conv branch and a pool+conv branch] ->
// relu -> global average pool -> flatten -> linear, every bias zero: the epsilon rule then conserves
// the relevance, sum over the input = the logit, through pooling switches and branches alike.
std::unique_ptr<Network> bias_free_network() {
  at::manual_seed(11);
  auto root = std::make_unique<Sequential>("", "Tiny");
  auto* c1 = root->add(std::make_unique<Conv2d>("c1", 3, 4, 3, 1, 1));
  root->add(std::make_unique<ReLU>("r1"));
  root->add(std::make_unique<MaxPool2d>("p1", 2, 2));
  auto* block = root->add(std::make_unique<Concat>("block"));
  auto* b1 = block->add(std::make_unique<Sequential>("block.b1"));
  auto* c2 = b1->add(std::make_unique<Conv2d>("block.b1.0", 4, 3, 1));
  auto* b2 = block->add(std::make_unique<Sequential>("block.b2"));
  b2->add(std::make_unique<MaxPool2d>("block.b2.0", 3, 1, 1));
  auto* c3 = b2->add(std::make_unique<Conv2d>("block.b2.1", 4, 2, 3, 1, 1));
  root->add(std::make_unique<ReLU>("r2"));
  root->add(std::make_unique<AdaptiveAvgPool2d>("gap", 1));
  root->add(std::make_unique<Flatten>("flatten"));
  auto* fc = root->add(std::make_unique<Linear>("fc", 5, 3));
  for (Conv2d* c : {c1, c2, c3}) {
    c->weight = at::randn(c->weight.sizes());
    c->bias = at::zeros({c->out_channels});
  }
  fc->weight = at::randn({3, 5});
  fc->bias = at::zeros({3});
  auto net = std::make_unique<Network>("tiny", std::move(root), 3);
  net->set_parameters_trainable(false);
  return net;
}

TEST(Lrp, EpsilonConservesRelevanceThroughPoolingAndBranches) {
  auto net = bias_free_network();
  at::manual_seed(5);
  const at::Tensor x = at::randn({2, 3, 8, 8});
  at::Tensor logits;
  {
    at::NoGradGuard no_grad;
    logits = net->forward(x).logits;
  }
  LrpOptions options;
  options.preset = LrpPreset::epsilon;
  options.epsilon = 1e-9;
  const at::Tensor classes = at::tensor({0, 2}, at::kLong);
  const at::Tensor r = lrp_relevance(*net, x, classes, options);
  ASSERT_EQ(r.sizes(), x.sizes());
  for (int64_t i = 0; i < 2; ++i) {
    const float logit = logits[i][classes[i].item<int64_t>()].item<float>();
    EXPECT_NEAR(r[i].sum().item<float>(), logit, 1e-4 * std::max(1.0f, std::abs(logit))) << i;
  }
  // Images stay apart: the second image alone gets the same relevance.
  const at::Tensor alone = lrp_relevance(*net, x.narrow(0, 1, 1), classes.narrow(0, 1, 1), options);
  EXPECT_TRUE(at::allclose(alone[0], r[1], 1e-5, 1e-6));
}

TEST(Lrp, BatchNormIsMergedIntoTheConvolutionBeforeIt) {
  // conv -> bn inside a Sequential block gives the relevance of one conv with the folded weights.
  at::manual_seed(2);
  const at::Tensor w = at::randn({2, 3, 3, 3}), gamma = at::rand({2}) + 0.5, beta = at::randn({2});
  const at::Tensor mean = at::randn({2}), var = at::rand({2}) + 0.5;
  auto build = [&](bool with_bn) {
    auto root = std::make_unique<Sequential>("", "Tiny");
    auto* block = root->add(std::make_unique<Sequential>("block", "BasicConv2d"));
    auto* conv = block->add(std::make_unique<Conv2d>("block.conv", 3, 2, 3, 1, 1, !with_bn));
    if (with_bn) {
      auto* bn = block->add(std::make_unique<BatchNorm2d>("block.bn", 2, 0.001));
      conv->weight = w;
      bn->weight = gamma;
      bn->bias = beta;
      bn->running_mean = mean;
      bn->running_var = var;
    } else {
      const at::Tensor g = gamma / at::sqrt(var + 0.001);
      conv->weight = w * g.view({-1, 1, 1, 1});
      conv->bias = beta - mean * g;
    }
    block->add(std::make_unique<ReLU>("block.relu"));
    root->add(std::make_unique<AdaptiveAvgPool2d>("gap", 1));
    root->add(std::make_unique<Flatten>("flatten"));
    auto* fc = root->add(std::make_unique<Linear>("fc", 2, 2));
    fc->weight = at::tensor({1.0f, -0.5f, 0.25f, 2.0f}).view({2, 2});
    fc->bias = at::zeros({2});
    auto net = std::make_unique<Network>("tiny", std::move(root), 2);
    net->set_parameters_trainable(false);
    return net;
  };
  const at::Tensor x = at::randn({1, 3, 6, 6});
  LrpOptions options;
  options.preset = LrpPreset::epsilon_plus;
  for (int64_t c = 0; c < 2; ++c) {
    const at::Tensor classes = at::tensor({c}, at::kLong);
    EXPECT_TRUE(at::allclose(lrp_relevance(*build(true), x, classes, options), lrp_relevance(*build(false), x, classes, options),
                             1e-4, 1e-6)) << c;
  }
}

TEST(Lrp, BuiltInNetworksRunEveryPreset) {
  at::manual_seed(0);
  auto net = build_googlenet(true);
  net->initialize_parameters();
  net->set_parameters_trainable(false);
  const at::Tensor x = at::randn({1, 3, 64, 64});
  for (LrpPreset preset : {LrpPreset::epsilon, LrpPreset::epsilon_plus, LrpPreset::epsilon_plus_flat, LrpPreset::epsilon_plus_box}) {
    LrpOptions options;
    options.preset = preset;
    options.low = at::full({1, 3, 1, 1}, -2.1f);
    options.high = at::full({1, 3, 1, 1}, 2.6f);
    const at::Tensor r = lrp_relevance(*net, x, at::zeros({1}, at::kLong), options);
    EXPECT_EQ(r.sizes(), x.sizes());
    EXPECT_TRUE(at::isfinite(r).all().item<bool>()) << static_cast<int>(preset);
    EXPECT_GT(r.abs().sum().item<float>(), 0) << static_cast<int>(preset);
  }
}

TEST(Lrp, BackpropOffersThePresetsByName) {
  EXPECT_EQ(parse_backprop_mode("lrp"), BackpropMode::lrp_epsilon_plus_flat);
  EXPECT_STREQ(backprop_mode_name(parse_backprop_mode("lrp-epsilon-plus-box")), "lrp-epsilon-plus-box");
  EXPECT_THROW(parse_backprop_mode("lrp-gamma"), UsageError);
  // Through run_backprop on the tiny conv-pool-linear network: the relevance sums to about the logit
  // (its only bias is the linear layer's, zero here) and the magnitude is the positive part per pixel.
  LoadedModel model = testing::tiny_conv_pool_linear_model(4, std::vector<float>(8, 0.5f), 0.0f, {0, 0});
  cv::Mat input(4, 4, CV_32FC3);
  cv::randu(input, 0, 1);
  BackpropOptions options;
  options.mode = BackpropMode::lrp_epsilon;
  options.target = "0";
  const std::vector<BackpropResult> r = run_backprop(model, {input}, options);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_NEAR(cv::sum(r[0].gradient)[0] + cv::sum(r[0].gradient)[1] + cv::sum(r[0].gradient)[2], r[0].target.logit, 1e-4);
  double lo;
  cv::minMaxLoc(r[0].magnitude, &lo);
  EXPECT_GE(lo, 0);
}

}  // namespace
}  // namespace cnnvis
