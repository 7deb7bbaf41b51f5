// The cascading randomisation test: Spearman / SSIM on hand-computed pairs, the layer steps (top first,
// BatchNorm with its convolution), re-initialisation that changes the logits and a restore that gives the
// same bytes back, and a seeded cascade that leaves the model as it was.
#include <cmath>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <torch/script.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/methods/model_randomisation.h"
#include "cnnvis/models/layers.h"
#include "cnnvis/models/network.h"
#include "support/temp_dir.h"
#include "tiny_models.h"

namespace cnnvis {
namespace {

cv::Mat row(const std::vector<float>& values) { return cv::Mat(values, true).reshape(1, 1); }

TEST(Randomisation, SpearmanOfKnownPairs) {
  // Ranks of b: 5 -> 0, 6 -> 1, the two 7s -> 2.5, 8 -> 4; Pearson of the ranks = 8 / sqrt(10 * 9.5).
  EXPECT_NEAR(spearman_correlation(row({1, 2, 3, 4, 5}), row({5, 6, 7, 8, 7})), 8.0 / std::sqrt(95.0), 1e-6);
  EXPECT_NEAR(spearman_correlation(row({1, 2, 3, 4}), row({10, 20, 30, 400})), 1.0, 1e-6);  // monotone
  EXPECT_NEAR(spearman_correlation(row({1, 2, 3, 4}), row({4, 3, 2, 1})), -1.0, 1e-6);
  EXPECT_EQ(spearman_correlation(row({1, 2, 3}), row({2, 2, 2})), 0.0f);  // constant: no ranking
  EXPECT_THROW(spearman_correlation(row({1, 2}), row({1, 2, 3})), UsageError);
}

TEST(Randomisation, SsimIsOneForMapsEqualUpToScale) {
  cv::Mat a(16, 16, CV_32F);
  cv::RNG rng(3);
  rng.fill(a, cv::RNG::UNIFORM, 0.0, 1.0);
  EXPECT_NEAR(map_ssim(a, a * 3 + 1), 1.0, 1e-5);  // min-max scaling removes scale and offset
  cv::Mat b(16, 16, CV_32F);
  rng.fill(b, cv::RNG::UNIFORM, 0.0, 1.0);
  EXPECT_LT(map_ssim(a, b), 0.5);
}

// conv (3 -> 4, 3x3) -> bn -> relu -> conv2 (4 -> 2, 1x1) -> relu2 -> gap -> flatten -> fc (2 -> 3).
LoadedModel bn_model() {
  auto root = std::make_unique<Sequential>("", "Tiny");
  root->add(std::make_unique<Conv2d>("conv", 3, 4, 3, 1, 1));
  root->add(std::make_unique<BatchNorm2d>("bn", 4));
  root->add(std::make_unique<ReLU>("relu"));
  root->add(std::make_unique<Conv2d>("conv2", 4, 2, 1));
  root->add(std::make_unique<ReLU>("relu2"));
  root->add(std::make_unique<AdaptiveAvgPool2d>("gap", 1));
  root->add(std::make_unique<Flatten>("flatten"));
  root->add(std::make_unique<Linear>("fc", 2, 3));
  auto net = std::make_unique<Network>("tiny", std::move(root), 3);
  at::manual_seed(11);
  net->initialize_parameters();
  // Biases and BatchNorm statistics away from their defaults, so that re-initialising them shows.
  for (auto& [name, tensor] : net->named_tensors(true)) {
    if (name != "bn.num_batches_tracked" && tensor->dim() == 1) tensor->uniform_(0.5, 1.5);
  }
  net->set_parameters_trainable(false);
  ModelCard card = testing::identity_card("tiny", 8, {"a", "b", "c"});
  card.default_layer = "relu2";
  return LoadedModel::from_network(std::move(net), card, "cpu");
}

at::Tensor logits_of(LoadedModel& model, const at::Tensor& x) {
  at::NoGradGuard no_grad;
  return model.network().forward(x).logits.clone();
}

TEST(Randomisation, StepsRunFromTheLogitsDownWithBatchNormInItsConvStep) {
  LoadedModel model = bn_model();
  const auto steps = randomisation_steps(model.network());
  ASSERT_EQ(steps.size(), 3u);
  EXPECT_EQ(steps[0], std::vector<std::string>{"fc"});
  EXPECT_EQ(steps[1], std::vector<std::string>{"conv2"});
  EXPECT_EQ(steps[2], (std::vector<std::string>{"conv", "bn"}));
}

TEST(Randomisation, ReinitialisingEveryLayerChangesTheLogitsAndRestoringGivesTheSameBytes) {
  LoadedModel model = bn_model();
  Network& net = model.network();
  at::manual_seed(5);
  const at::Tensor x = at::rand({2, 3, 8, 8});
  const at::Tensor before = logits_of(model, x);
  std::vector<at::Tensor> saved;
  for (auto& [name, tensor] : net.named_tensors(true)) saved.push_back(tensor->clone());
  {
    ParameterSnapshot snapshot(net);
    std::uint64_t seed = 1;
    for (const auto& step : randomisation_steps(net)) reinitialize_layers(net, step, seed++);
    EXPECT_FALSE(at::allclose(logits_of(model, x), before));
    snapshot.restore();
    EXPECT_TRUE(at::equal(logits_of(model, x), before));
    reinitialize_layers(net, {"fc"}, 3);  // the destructor restores too
  }
  const auto now = net.named_tensors(true);
  ASSERT_EQ(now.size(), saved.size());
  for (std::size_t i = 0; i < saved.size(); ++i) {
    EXPECT_TRUE(at::equal(*now[i].second, saved[i])) << now[i].first;
  }
  EXPECT_TRUE(at::equal(logits_of(model, x), before));
  // Seeded: the same seed gives the same weights.
  reinitialize_layers(net, {"conv"}, 9);
  const at::Tensor first = net.find_node("conv")->conv_weight().clone();
  reinitialize_layers(net, {"conv"}, 9);
  EXPECT_TRUE(at::equal(net.find_node("conv")->conv_weight(), first));
  EXPECT_THROW(reinitialize_layers(net, {"nope"}, 1), UsageError);
}

TEST(Randomisation, CascadeIsSeededAndLeavesTheModelUnchanged) {
  LoadedModel model = bn_model();
  std::vector<cv::Mat> inputs;
  cv::RNG rng(2);
  for (int i = 0; i < 3; ++i) {
    cv::Mat m(8, 8, CV_32FC3);
    rng.fill(m, cv::RNG::UNIFORM, 0.0, 1.0);
    inputs.push_back(m);
  }
  at::manual_seed(5);
  const at::Tensor x = at::rand({1, 3, 8, 8});
  const at::Tensor before = logits_of(model, x);
  const auto original = explain(model, inputs, "saliency");
  const auto a = cascading_randomisation(model, inputs, "saliency", original);
  EXPECT_TRUE(at::equal(logits_of(model, x), before));
  ASSERT_EQ(a.steps, (std::vector<std::string>{"fc", "conv2", "conv+bn"}));
  ASSERT_EQ(a.spearman.size(), 3u);
  ASSERT_EQ(a.spearman[0].size(), 3u);
  for (const auto& step : a.spearman) {
    for (float v : step) EXPECT_TRUE(v >= -1.0f && v <= 1.0f);
  }
  const auto b = cascading_randomisation(model, inputs, "saliency", original);
  EXPECT_EQ(a.spearman, b.spearman);
  EXPECT_EQ(a.ssim, b.ssim);
  RandomisationOptions two;
  two.max_steps = 2;
  EXPECT_EQ(cascading_randomisation(model, inputs, "saliency", original, two).steps.size(), 2u);
  // The explanation of the intact model is recomputed unchanged after the cascade.
  const auto again = explain(model, inputs, "saliency");
  for (std::size_t i = 0; i < inputs.size(); ++i) EXPECT_EQ(cv::norm(again[i].map, original[i].map, cv::NORM_INF), 0.0);
}


// A TorchScript model saved from C++: conv -> batch norm -> ReLU -> mean -> linear, each a submodule whose
// class name is the torch.nn type it imitates (the loader types modules by their class name).
std::string save_script_model(const std::string& path) {
  at::manual_seed(11);
  torch::jit::Module conv("Conv2d");
  conv.register_parameter("weight", at::randn({4, 3, 3, 3}), false);
  conv.register_parameter("bias", at::randn({4}), false);
  conv.define("def forward(self, x):\n    return torch.conv2d(x, self.weight, self.bias, [1, 1], [1, 1])\n");
  torch::jit::Module bn("BatchNorm2d");
  bn.register_parameter("weight", at::rand({4}) + 0.5, false);
  bn.register_parameter("bias", at::randn({4}), false);
  bn.register_buffer("running_mean", at::randn({4}));
  bn.register_buffer("running_var", at::rand({4}) + 0.5);
  bn.register_buffer("num_batches_tracked", at::full({}, 7, at::kLong));
  bn.define("def forward(self, x):\n    return torch.batch_norm(x, self.weight, self.bias, self.running_mean, "
            "self.running_var, False, 0.1, 1e-05, False)\n");
  torch::jit::Module fc("Linear");
  fc.register_parameter("weight", at::randn({5, 4}), false);
  fc.register_parameter("bias", at::randn({5}), false);
  fc.define("def forward(self, x):\n    return torch.addmm(self.bias, x, self.weight.t())\n");
  torch::jit::Module net("Net");
  net.register_module("conv", conv);
  net.register_module("bn", bn);
  net.register_module("fc", fc);
  net.define("def forward(self, x):\n"
             "    return self.fc.forward(torch.relu(self.bn.forward(self.conv.forward(x))).mean([2, 3]))\n");
  net.save(path);
  return path;
}

TEST(Randomisation, TorchScriptModulesAreStepsAndGetPyTorchsResetRules) {
  testing::TempDir dir;
  ModelLoadOptions options;
  options.model = save_script_model(dir / "net.pt");
  LoadedModel model = LoadedModel::load(options);
  Network& net = model.network();
  const auto steps = randomisation_steps(net);
  ASSERT_EQ(steps.size(), 2u);
  EXPECT_EQ(steps[0], std::vector<std::string>{"fc"});
  EXPECT_EQ(steps[1], (std::vector<std::string>{"conv", "bn"}));

  at::manual_seed(5);
  const at::Tensor x = at::rand({2, 3, 16, 16});
  const at::Tensor before = logits_of(model, x);
  auto tensor = [&](const std::string& name) {
    for (auto& [key, t] : net.named_tensors(true)) {
      if (key == name) return t->clone();
    }
    ADD_FAILURE() << "no tensor " << name;
    return at::Tensor();
  };
  {
    ParameterSnapshot snapshot(net);
    reinitialize_layers(net, steps[1], 3);
    // The graph reads the module's tensors: the logits change.
    EXPECT_FALSE(at::allclose(logits_of(model, x), before));
    // kaiming_uniform_(a = sqrt(5)): U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = 3 * 3 * 3, bias alike.
    const double bound = 1.0 / std::sqrt(27.0);
    const at::Tensor w = tensor("conv.weight"), b = tensor("conv.bias");
    EXPECT_LE(w.abs().max().item<double>(), bound);
    EXPECT_GT(w.abs().max().item<double>(), 0.8 * bound);  // drawn over the whole range (108 values)
    EXPECT_LE(b.abs().max().item<double>(), bound);
    EXPECT_TRUE(at::equal(tensor("bn.weight"), at::ones({4})));
    EXPECT_TRUE(at::equal(tensor("bn.bias"), at::zeros({4})));
    EXPECT_TRUE(at::equal(tensor("bn.running_mean"), at::zeros({4})));
    EXPECT_TRUE(at::equal(tensor("bn.running_var"), at::ones({4})));
    EXPECT_EQ(tensor("bn.num_batches_tracked").item<int64_t>(), 0);
  }
  EXPECT_TRUE(at::equal(logits_of(model, x), before));  // restored in place

  std::vector<cv::Mat> inputs;
  cv::RNG rng(4);
  for (int i = 0; i < 2; ++i) {
    cv::Mat m(model.card().input_height, model.card().input_width, CV_32FC3);
    rng.fill(m, cv::RNG::UNIFORM, 0.0, 1.0);
    inputs.push_back(m);
  }
  const auto original = explain(model, inputs, "saliency");
  const auto result = cascading_randomisation(model, inputs, "saliency", original);
  EXPECT_EQ(result.steps, (std::vector<std::string>{"fc", "conv+bn"}));
  EXPECT_TRUE(at::equal(logits_of(model, x), before));
  // With every layer re-drawn the saliency map is no longer the original one.
  EXPECT_LT(result.spearman[1][0], 0.99f);
}

}  // namespace
}  // namespace cnnvis
