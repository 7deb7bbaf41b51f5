// Native networks: names, aliases, taps, gradient leaves, receptive fields, weight loading.
#include <filesystem>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/io/safetensors.h"
#include "cnnvis/models/architectures.h"
#include "cnnvis/models/layers.h"
#include "cnnvis/models/network.h"
#include "cnnvis/models/weights.h"

namespace cnnvis {
namespace {

namespace fs = std::filesystem;

TEST(Network, Vgg16KeysMatchTorchvisionLayout) {
  auto net = build_vgg16();
  std::vector<std::string> names;
  for (auto& [name, tensor] : net->named_tensors()) names.push_back(name);
  ASSERT_EQ(names.size(), 32u);  // 13 conv + 3 linear, weight and bias each
  EXPECT_EQ(names.front(), "features.0.weight");
  EXPECT_EQ(names[2], "features.2.weight");  // the ReLU keeps slot 1
  EXPECT_EQ(names[25], "features.28.bias");
  EXPECT_EQ(names.back(), "classifier.6.bias");
  EXPECT_EQ(net->resolve_layer("conv5_3"), "features.28");
  EXPECT_EQ(net->resolve_layer("relu5_3"), "features.29");
  EXPECT_EQ(net->resolve_layer("pool5"), "features.30");
  EXPECT_EQ(net->resolve_layer("fc7"), "classifier.3");
}

TEST(Network, GoogLeNetKeysIncludeBatchNormBuffers) {
  auto net = build_googlenet(true);
  std::vector<std::string> names;
  for (auto& [name, tensor] : net->named_tensors()) names.push_back(name);
  auto has = [&](const std::string& n) { return std::find(names.begin(), names.end(), n) != names.end(); };
  EXPECT_TRUE(has("conv1.conv.weight"));
  EXPECT_TRUE(has("conv1.bn.running_var"));
  EXPECT_TRUE(has("conv1.bn.num_batches_tracked"));
  EXPECT_TRUE(has("inception4c.branch4.1.conv.weight"));  // branch4 = Sequential(pool, conv)
  EXPECT_TRUE(has("fc.weight"));
  EXPECT_FALSE(has("aux1.conv.conv.weight"));
  EXPECT_EQ(net->resolve_layer("mixed4c"), "inception4c");
  EXPECT_NE(net->find_node("inception4c.branch2"), nullptr);
  // The "5x5" branch really uses 3x3 kernels, as in torchvision.
  auto* conv = dynamic_cast<const Conv2d*>(net->find_node("inception3a.branch3.1.conv"));
  ASSERT_NE(conv, nullptr);
  EXPECT_EQ(conv->kernel, 3);
}

TEST(Network, UnknownLayerListsValidNames) {
  auto net = build_vgg16();
  try {
    net->resolve_layer("conv9_9");
    FAIL() << "expected UsageError";
  } catch (const UsageError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("conv9_9"), std::string::npos);
    EXPECT_NE(message.find("features.29"), std::string::npos);
    EXPECT_NE(message.find("conv5_3"), std::string::npos);
  }
}

TEST(Network, TapsReturnIntermediatesAndStopEarly) {
  auto net = build_fashion_vgg();
  at::manual_seed(0);
  at::Tensor x = at::randn({2, 3, 64, 64});
  ForwardRequest request;
  request.taps = {"features.8", "features.17"};
  ForwardResult full = net->forward(x, request);
  ASSERT_TRUE(full.logits.defined());
  EXPECT_EQ(full.logits.sizes(), (std::vector<int64_t>{2, 10}));
  EXPECT_EQ(full.taps.at("features.8").sizes(), (std::vector<int64_t>{2, 128, 16, 16}));
  request.need_logits = false;
  request.taps = {"features.8"};
  ForwardResult partial = net->forward(x, request);
  EXPECT_FALSE(partial.logits.defined());
  EXPECT_TRUE(at::equal(partial.taps.at("features.8"), full.taps.at("features.8")));
}

TEST(Network, GradientTapIsALeafSoBackwardStopsThere) {
  auto net = build_fashion_vgg();
  net->set_parameters_trainable(false);
  at::Tensor x = at::randn({1, 3, 64, 64});
  ForwardRequest request;
  request.taps = {"features.8", "features.17"};
  request.grad_taps = {"features.8", "features.17"};
  ForwardResult r = net->forward(x, request);
  r.logits.sum().backward();
  const at::Tensor& low = r.taps.at("features.8");
  const at::Tensor& high = r.taps.at("features.17");
  EXPECT_TRUE(low.is_leaf());
  ASSERT_TRUE(low.grad().defined());
  ASSERT_TRUE(high.grad().defined());  // retained on the non-leaf above
  EXPECT_GT(low.grad().abs().sum().item<double>(), 0);
  for (auto& [name, tensor] : net->named_tensors(false)) EXPECT_FALSE(tensor->grad().defined()) << name;
}

TEST(Network, ReceptiveFieldsOfVgg16) {
  auto net = build_vgg16();
  net->initialize_parameters();
  auto layers = net->describe_layers(224, 224);
  auto find = [&](const std::string& name) {
    for (const auto& l : layers) {
      if (l.name == name) return l;
    }
    throw std::runtime_error("missing " + name);
  };
  // Known values: conv1_1 3, pool1 6 (stride 2), conv5_3 196 (stride 16), pool5 212 (stride 32).
  EXPECT_EQ(find("features.0").field.size, 3);
  EXPECT_EQ(find("features.4").field.size, 6);
  EXPECT_EQ(find("features.4").field.stride, 2);
  EXPECT_EQ(find("features.28").field.size, 196);
  EXPECT_EQ(find("features.28").field.stride, 16);
  EXPECT_EQ(find("features.30").field.size, 212);
  EXPECT_EQ(find("features.30").field.stride, 32);
  EXPECT_EQ(find("features.30").output_shape, (std::vector<int64_t>{512, 7, 7}));
  EXPECT_EQ(find("features.0").parameters, 64 * 3 * 9 + 64);
}

TEST(Network, GoogLeNetShapesFollowCeilModePooling) {
  auto net = build_googlenet(false);
  net->initialize_parameters();
  auto layers = net->describe_layers(224, 224);
  for (const auto& l : layers) {
    if (l.name == "maxpool1") EXPECT_EQ(l.output_shape, (std::vector<int64_t>{64, 56, 56}));
    if (l.name == "inception4c") EXPECT_EQ(l.output_shape, (std::vector<int64_t>{512, 14, 14}));
    if (l.name == "inception5b") EXPECT_EQ(l.output_shape, (std::vector<int64_t>{1024, 7, 7}));
    if (l.name == "maxpool1") EXPECT_EQ(l.field.extent, 56);  // the field walk agrees with the real shape
  }
}

TEST(Network, ForwardFromALayerOnTheMainChainGivesTheSameLogits) {
  at::manual_seed(3);
  auto net = build_googlenet(false);
  net->initialize_parameters();
  at::NoGradGuard no_grad;
  const at::Tensor x = at::randn({2, 3, 64, 64});
  ForwardRequest request;
  request.taps = {"inception4e", "conv2", "maxpool4"};
  const ForwardResult full = net->forward(x, request);
  // An Inception block is one step; a Sequential block (conv2 = conv, bn, relu) ends at its last leaf.
  for (const std::string layer : {"inception4e", "conv2", "maxpool4"}) {
    ASSERT_TRUE(net->can_forward_from(layer)) << layer;
    const at::Tensor logits = net->forward_from(layer, full.taps.at(layer));
    EXPECT_TRUE(at::allclose(logits, full.logits, 1e-5, 1e-5)) << layer;
  }
  // Changing the layer's output changes what follows (forward_from really starts from it).
  EXPECT_FALSE(at::allclose(net->forward_from("inception4e", full.taps.at("inception4e") * 0.5), full.logits));
}

TEST(Network, AReplacedLayerOutputIsWhatTheLaterLayersRead) {
  at::manual_seed(5);
  auto net = build_googlenet(false);
  net->initialize_parameters();
  at::NoGradGuard no_grad;
  const at::Tensor x = at::randn({2, 3, 64, 64});
  ForwardRequest tap;
  tap.taps = {"inception4e", "inception4c.branch2"};
  const ForwardResult full = net->forward(x, tap);
  // On the main chain a replacement gives what forward_from gives from the same activations.
  const at::Tensor changed = full.taps.at("inception4e") * 0.5;
  ForwardRequest replace;
  replace.taps = {"inception4e"};
  replace.replacements["inception4e"] = changed;
  const ForwardResult replaced = net->forward(x, replace);
  EXPECT_TRUE(at::allclose(replaced.logits, net->forward_from("inception4e", changed), 1e-5, 1e-5));
  EXPECT_TRUE(at::equal(replaced.taps.at("inception4e"), changed));
  EXPECT_FALSE(at::allclose(replaced.logits, full.logits));
  // Inside a branch (where forward_from cannot start): the same output changes nothing, a zeroed one does.
  ForwardRequest branch;
  branch.taps = {"inception4c.branch2"};
  branch.replacements["inception4c.branch2"] = full.taps.at("inception4c.branch2").clone();
  EXPECT_TRUE(at::allclose(net->forward(x, branch).logits, full.logits, 1e-6, 1e-6));
  branch.replacements["inception4c.branch2"] = at::zeros_like(full.taps.at("inception4c.branch2"));
  EXPECT_FALSE(at::allclose(net->forward(x, branch).logits, full.logits));
  // A replacement of another shape, or for a layer that is not tapped, is refused.
  branch.replacements["inception4c.branch2"] = at::zeros({2, 1, 4, 4});
  EXPECT_THROW(net->forward(x, branch), UsageError);
  ForwardRequest untapped;
  untapped.replacements["inception4e"] = changed;
  EXPECT_THROW(net->forward(x, untapped), UsageError);
}

TEST(Network, ForwardFromInsideABranchIsRefused) {
  auto net = build_googlenet(false);
  net->initialize_parameters();
  EXPECT_FALSE(net->can_forward_from("inception4c.branch2.0"));
  EXPECT_FALSE(net->can_forward_from("no_such_layer"));
  EXPECT_THROW(net->forward_from("inception4c.branch2.0", at::zeros({1, 96, 14, 14})), UsageError);
  const std::vector<const Node*> chain = net->main_chain();
  ASSERT_FALSE(chain.empty());
  EXPECT_EQ(chain.back()->name(), "fc");
}

class WeightsFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cnnvis_weights_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(WeightsFile, SaveLoadRoundTrip) {
  at::manual_seed(3);
  auto a = build_fashion_vgg();
  const std::string path = (dir_ / "w.safetensors").string();
  save_weights(*a, path);
  at::manual_seed(4);
  auto b = build_fashion_vgg();
  SafetensorsFile file = SafetensorsFile::open(path);
  WeightLoadReport report = load_weights(*b, file);
  EXPECT_TRUE(report.missing.empty());
  auto ta = a->named_tensors(), tb = b->named_tensors();
  ASSERT_EQ(ta.size(), tb.size());
  for (std::size_t i = 0; i < ta.size(); ++i) EXPECT_TRUE(at::equal(*ta[i].second, *tb[i].second)) << ta[i].first;
}

TEST_F(WeightsFile, MismatchesAreListedInOneError) {
  auto vgg = build_fashion_vgg();
  std::vector<float> data(16 * 3 * 5 * 5, 0.0f);
  const std::string path = (dir_ / "bad.safetensors").string();
  // Wrong shape for one key, one unexpected key, and everything else missing.
  write_safetensors(path, {{"features.0.weight", DType::F32, {16, 3, 5, 5}, data.data()},
                           {"extra.weight", DType::F32, {4}, data.data()}});
  SafetensorsFile file = SafetensorsFile::open(path);
  try {
    load_weights(*vgg, file);
    FAIL() << "expected WeightsError";
  } catch (const WeightsError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(path), std::string::npos) << m;
    EXPECT_NE(m.find("missing"), std::string::npos) << m;
    EXPECT_NE(m.find("extra.weight"), std::string::npos) << m;
    EXPECT_NE(m.find("features.0.weight: file [16,3,5,5] vs model [32,3,3,3]"), std::string::npos) << m;
  }
}

TEST_F(WeightsFile, NaNValuesAreRejected) {
  at::manual_seed(3);
  auto net = build_fashion_vgg();
  net->named_tensors()[0].second->view(-1)[5] = NAN;
  const std::string path = (dir_ / "nan.safetensors").string();
  save_weights(*net, path);
  auto fresh = build_fashion_vgg();
  SafetensorsFile file = SafetensorsFile::open(path);
  EXPECT_THROW(load_weights(*fresh, file), WeightsError);
}

// Without gradients a ReLU overwrites the batch norm output before it (one allocation less per layer),
// but never a tensor that someone holds: a tap, a replacement, the caller's input or forward_from's
// activation. The values are those of the out-of-place ReLU, bit for bit.
TEST(Network, ReluInPlaceOverwritesOnlyWhatNoOneHolds) {
  at::manual_seed(5);
  auto net = build_fashion_vgg();
  net->initialize_parameters();
  const at::Tensor x = at::randn({2, 3, 64, 64});
  const at::Tensor x_copy = x.clone();
  at::Tensor reference;
  {
    // Grad mode on: no layer writes over its input.
    reference = net->forward(x).logits.detach();
  }
  at::NoGradGuard no_grad;
  EXPECT_TRUE(at::equal(net->forward(x).logits, reference));
  EXPECT_TRUE(at::equal(x, x_copy));

  ForwardRequest tapped;
  tapped.taps = {"features.1", "features.5"};
  const ForwardResult with_taps = net->forward(x, tapped);
  EXPECT_LT(with_taps.taps.at("features.1").min().item<float>(), 0) << "the ReLU after a tap wrote over it";
  EXPECT_LT(with_taps.taps.at("features.5").min().item<float>(), 0);
  EXPECT_TRUE(at::equal(with_taps.logits, reference));

  ForwardRequest replaced;
  replaced.taps = {"features.1"};
  const at::Tensor replacement = at::randn({2, 32, 64, 64});
  const at::Tensor replacement_copy = replacement.clone();
  replaced.replacements["features.1"] = replacement;
  net->forward(x, replaced);
  EXPECT_TRUE(at::equal(replacement, replacement_copy));

  const at::Tensor activation = with_taps.taps.at("features.1").clone();
  const at::Tensor activation_copy = activation.clone();
  const at::Tensor from = net->forward_from("features.1", activation);
  EXPECT_TRUE(at::equal(activation, activation_copy));
  EXPECT_TRUE(at::equal(from, reference));
}

}  // namespace
}  // namespace cnnvis
