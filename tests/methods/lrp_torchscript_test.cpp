// LRP on TorchScript models saved from C++: a residual sum computed by hand, the same network as a
// native one (batch norm merged, pooling, every preset), and operators without a rule named in the error.
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/script.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/methods/lrp.h"
#include "cnnvis/models/layers.h"
#include "cnnvis/models/loaded_model.h"
#include "cnnvis/models/network.h"
#include "support/temp_dir.h"

namespace cnnvis {
namespace {

// A module whose class name is the torch.nn type it imitates, with the given parameters.
torch::jit::Module module_of(const std::string& type, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                             const std::string& forward) {
  torch::jit::Module m(type);
  for (const auto& [name, t] : tensors) m.register_parameter(name, t, false);
  m.define(forward);
  return m;
}

torch::jit::Module conv1x1(const at::Tensor& weight) {
  return module_of("Conv2d", {{"weight", weight}},
                   "def forward(self, x):\n    return torch.conv2d(x, self.weight, None, [1, 1], [0, 0])\n");
}

torch::jit::Module linear_module(const at::Tensor& weight, const at::Tensor& bias) {
  return module_of("Linear", {{"weight", weight}, {"bias", bias}},
                   "def forward(self, x):\n    return torch.linear(x, self.weight, self.bias)\n");
}

LoadedModel load(const torch::jit::Module& net, const std::string& path) {
  net.save(path);
  ModelLoadOptions options;
  options.model = path;
  return LoadedModel::load(options);
}

at::Tensor relevance(const Network& net, LrpPreset preset, const at::Tensor& x, int64_t target = 0) {
  LrpOptions options;
  options.preset = preset;
  options.epsilon = 1e-9;
  options.low = at::zeros({1, x.size(1), 1, 1});
  options.high = at::full({1, x.size(1), 1, 1}, 4.0f);
  return lrp_relevance(net, x, at::full({x.size(0)}, target, at::kLong), options);
}

// a(x) + b(x) -> mean -> linear (weight 1): two 1x1 convolutions of the 1 x 1 image x = (3, 1, 5),
// weights (2, -1, 0) and (1, 1, 0), no bias, give 5 + 4 = 9, the logit. The sum hands 5 to a, 4 to b.
TEST(LrpTorchScript, SumSplitsItsRelevanceByShare) {
  testing::TempDir dir;
  torch::jit::Module net("Net");
  net.register_module("a", conv1x1(at::tensor({2.0f, -1.0f, 0.0f}).view({1, 3, 1, 1})));
  net.register_module("b", conv1x1(at::tensor({1.0f, 1.0f, 0.0f}).view({1, 3, 1, 1})));
  net.register_module("fc", linear_module(at::ones({1, 1}), at::zeros({1})));
  net.define("def forward(self, x):\n"
             "    return self.fc.forward((self.a.forward(x) + self.b.forward(x)).mean([2, 3]))\n");
  LoadedModel model = load(net, dir / "sum.pt");
  const at::Tensor x = at::tensor({3.0f, 1.0f, 5.0f}).view({1, 3, 1, 1});
  const auto expect = [&](LrpPreset preset, float r0, float r1, float r2) {
    const at::Tensor r = relevance(model.network(), preset, x);
    EXPECT_NEAR(r[0][0][0][0].item<float>(), r0, 1e-5) << static_cast<int>(preset);
    EXPECT_NEAR(r[0][1][0][0].item<float>(), r1, 1e-5) << static_cast<int>(preset);
    EXPECT_NEAR(r[0][2][0][0].item<float>(), r2, 1e-5) << static_cast<int>(preset);
  };
  // epsilon: a hands x_i w_i 5 / 5 = (6, -1, 0), b hands (3, 1, 0).
  expect(LrpPreset::epsilon, 9, 0, 0);
  // z+: a's negative contribution is left out: (5, 0, 0); b is all positive: (3, 1, 0).
  expect(LrpPreset::epsilon_plus, 8, 1, 0);
  // flat for a, the graph's first convolution: 5 / 3 to each input of its window.
  expect(LrpPreset::epsilon_plus_flat, 3 + 5.0f / 3, 1 + 5.0f / 3, 5.0f / 3);
  // z-box for a with l = 0, h = 4: z = 5 + 4 = 9, R = (6 - 0, -1 + 4, 0) * 5 / 9.
  expect(LrpPreset::epsilon_plus_box, 3 + 30.0f / 9, 1 + 15.0f / 9, 0);
}

// The same network natively and as TorchScript: conv 3x3 (bias) -> batch norm -> ReLU -> max pool ->
// conv 3x3 (stride 2) -> ReLU -> global average pool -> flatten -> linear.
TEST(LrpTorchScript, MatchesTheNativeNetworkUnderEveryPreset) {
  at::manual_seed(3);
  const at::Tensor w1 = at::randn({4, 3, 3, 3}), b1 = at::randn({4});
  const at::Tensor gamma = at::rand({4}) + 0.5, beta = at::randn({4}), mean = at::randn({4}) * 0.3,
                   var = at::rand({4}) + 0.5;
  const at::Tensor w2 = at::randn({6, 4, 3, 3}), b2 = at::randn({6}) * 0.1;
  const at::Tensor wf = at::randn({5, 6}), bf = at::randn({5}) * 0.1;

  auto root = std::make_unique<Sequential>("", "Tiny");
  auto* c1 = root->add(std::make_unique<Conv2d>("conv1", 3, 4, 3, 1, 1));
  auto* bn = root->add(std::make_unique<BatchNorm2d>("bn1", 4, 1e-5));
  root->add(std::make_unique<ReLU>("relu1"));
  root->add(std::make_unique<MaxPool2d>("pool", 2, 2));
  auto* c2 = root->add(std::make_unique<Conv2d>("conv2", 4, 6, 3, 2, 1));
  root->add(std::make_unique<ReLU>("relu2"));
  root->add(std::make_unique<AdaptiveAvgPool2d>("gap", 1));
  root->add(std::make_unique<Flatten>("flatten"));
  auto* fc = root->add(std::make_unique<Linear>("fc", 6, 5));
  c1->weight = w1;
  c1->bias = b1;
  bn->weight = gamma;
  bn->bias = beta;
  bn->running_mean = mean;
  bn->running_var = var;
  c2->weight = w2;
  c2->bias = b2;
  fc->weight = wf;
  fc->bias = bf;
  Network native("tiny", std::move(root), 5);
  native.set_parameters_trainable(false);

  testing::TempDir dir;
  torch::jit::Module net("Net");
  net.register_module("conv1", module_of("Conv2d", {{"weight", w1}, {"bias", b1}},
                                         "def forward(self, x):\n"
                                         "    return torch.conv2d(x, self.weight, self.bias, [1, 1], [1, 1])\n"));
  torch::jit::Module bn_module("BatchNorm2d");
  bn_module.register_parameter("weight", gamma, false);
  bn_module.register_parameter("bias", beta, false);
  bn_module.register_buffer("running_mean", mean);
  bn_module.register_buffer("running_var", var);
  bn_module.define("def forward(self, x):\n    return torch.batch_norm(x, self.weight, self.bias, self.running_mean, "
                   "self.running_var, False, 0.1, 1e-05, False)\n");
  net.register_module("bn1", bn_module);
  net.register_module("conv2", module_of("Conv2d", {{"weight", w2}, {"bias", b2}},
                                         "def forward(self, x):\n"
                                         "    return torch.conv2d(x, self.weight, self.bias, [2, 2], [1, 1])\n"));
  net.register_module("fc", linear_module(wf, bf));
  net.define("def forward(self, x):\n"
             "    y = torch.max_pool2d(torch.relu(self.bn1.forward(self.conv1.forward(x))), [2, 2], [2, 2])\n"
             "    y = torch.adaptive_avg_pool2d(torch.relu_(self.conv2.forward(y)), [1, 1])\n"
             "    return self.fc.forward(torch.flatten(y, 1))\n");
  LoadedModel script = load(net, dir / "net.pt");

  const at::Tensor x = at::randn({2, 3, 12, 12});
  for (LrpPreset preset :
       {LrpPreset::epsilon, LrpPreset::epsilon_plus, LrpPreset::epsilon_plus_flat, LrpPreset::epsilon_plus_box}) {
    for (int64_t target : {0, 3}) {
      const at::Tensor ours = relevance(script.network(), preset, x, target);
      const at::Tensor expected = relevance(native, preset, x, target);
      ASSERT_EQ(ours.sizes(), x.sizes());
      EXPECT_GT(expected.abs().max().item<double>(), 0);
      EXPECT_TRUE(at::allclose(ours, expected, 1e-4, 1e-5 * expected.abs().max().item<double>()))
          << "preset " << static_cast<int>(preset) << ", class " << target << ": max difference "
          << (ours - expected).abs().max().item<double>();
    }
  }
}

void expect_refused(const torch::jit::Module& net, const std::string& path, const std::vector<std::string>& words) {
  LoadedModel model = load(net, path);
  const at::Tensor x = at::randn({1, 3, 4, 4});
  try {
    relevance(model.network(), LrpPreset::epsilon_plus_flat, x);
    ADD_FAILURE() << "no error for " << path;
  } catch (const UsageError& e) {
    for (const auto& word : words) EXPECT_NE(std::string(e.what()).find(word), std::string::npos) << e.what();
  }
}

TEST(LrpTorchScript, OperatorsWithoutARuleAreNamedWithTheirModule) {
  testing::TempDir dir;
  {
    torch::jit::Module gate("Gate");
    gate.define("def forward(self, x):\n    return x * torch.sigmoid(x)\n");
    torch::jit::Module net("Net");
    net.register_module("conv", conv1x1(at::ones({2, 3, 1, 1})));
    net.register_module("gate", gate);
    net.register_module("fc", linear_module(at::ones({3, 2}), at::zeros({3})));
    net.define("def forward(self, x):\n"
               "    return self.fc.forward(self.gate.forward(self.conv.forward(x)).mean([2, 3]))\n");
    expect_refused(net, dir / "gate.pt", {"gate.pt", "aten::sigmoid", "module 'gate'"});
  }
  {
    // A batch norm that reads the image, not a convolution's output, has nothing to be merged into.
    torch::jit::Module bn("BatchNorm2d");
    bn.register_buffer("running_mean", at::zeros({3}));
    bn.register_buffer("running_var", at::ones({3}));
    bn.define("def forward(self, x):\n    return torch.batch_norm(x, None, None, self.running_mean, "
              "self.running_var, False, 0.1, 1e-05, False)\n");
    torch::jit::Module net("Net");
    net.register_module("norm", bn);
    net.register_module("conv", conv1x1(at::ones({2, 3, 1, 1})));
    net.register_module("fc", linear_module(at::ones({3, 2}), at::zeros({3})));
    net.define("def forward(self, x):\n"
               "    return self.fc.forward(self.conv.forward(self.norm.forward(x)).mean([2, 3]))\n");
    expect_refused(net, dir / "norm.pt", {"does not follow a convolution", "module 'norm'"});
  }
}

}  // namespace
}  // namespace cnnvis
