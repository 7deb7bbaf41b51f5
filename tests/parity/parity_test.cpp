// Parity with torchvision: with seeded random weights exported by scripts/export_weights.py, every
// named layer's output and the logits of the native VGG16 and GoogLeNet match torchvision's (computed
// by tests/parity/make_reference.py with Debian's python3-torch) within 1e-4 relative, on two inputs.
#include <cmath>
#include <filesystem>
#include <fstream>

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cnnvis/io/npy.h"
#include "cnnvis/models/loaded_model.h"
#include "cnnvis/models/network.h"
#include "parity_helpers.h"

namespace cnnvis {
namespace {

namespace fs = std::filesystem;
const fs::path kParityDir = CNNVIS_PARITY_DIR;

class Parity : public ::testing::TestWithParam<std::string> {};

TEST_P(Parity, EveryNamedLayerAndLogitsMatchTorchvision) {
  const std::string arch = GetParam();
  const fs::path layers_file = kParityDir / (arch + "_layers.json");
  ASSERT_TRUE(fs::exists(layers_file)) << "run the parity_export fixture first (ctest does): " << layers_file;
  nlohmann::json layers;
  std::ifstream(layers_file) >> layers;

  ModelLoadOptions options;
  options.model = arch;
  options.weights = (kParityDir / (arch + ".safetensors")).string();
  options.card = (kParityDir / (arch + ".json")).string();
  LoadedModel model = LoadedModel::load(options);
  Network& net = model.network();

  ForwardRequest request;
  for (const auto& layer : layers["layers"]) {
    const std::string name = layer["name"];
    ASSERT_NE(net.find_node(name), nullptr) << "torchvision module " << name << " has no native node";
    request.taps.push_back(name);
  }
  if (model.card().transform_input) request.taps.push_back("transform_input");

  const int inputs = layers["inputs"];
  ASSERT_GE(inputs, 2);
  for (int i = 0; i < inputs; ++i) {
    const fs::path dir = kParityDir / (arch + "_input" + std::to_string(i));
    at::Tensor image = load_npy_tensor(kParityDir / (arch + "_input" + std::to_string(i) + ".npy"));
    const auto& card = model.card();
    at::Tensor mean = at::tensor({card.mean[0], card.mean[1], card.mean[2]}).view({1, 3, 1, 1});
    at::Tensor std = at::tensor({card.std[0], card.std[1], card.std[2]}).view({1, 3, 1, 1});
    at::NoGradGuard no_grad;
    ForwardResult result = net.forward((image - mean) / std, request);

    double worst = 0;
    std::string worst_name;
    for (const std::string& name : request.taps) {
      at::Tensor reference = load_npy_tensor(dir / (name + ".npy"));
      const at::Tensor& ours = result.taps.at(name);
      ASSERT_EQ(ours.sizes(), reference.sizes()) << name;
      const double error = relative_error(ours, reference);
      EXPECT_LE(error, 1e-4) << arch << " input " << i << " layer " << name;
      if (error > worst) worst = error, worst_name = name;
    }
    at::Tensor logits = load_npy_tensor(dir / "logits.npy");
    const double logits_error = relative_error(result.logits, logits);
    EXPECT_LE(logits_error, 1e-4) << arch << " logits, input " << i;
    EXPECT_EQ(result.logits.argmax(1).item<int64_t>(), logits.argmax(1).item<int64_t>());
    std::cout << arch << " input " << i << ": " << request.taps.size() << " layers, worst relative error " << worst
              << " (" << worst_name << "), logits " << logits_error << "\n";
  }
}

INSTANTIATE_TEST_SUITE_P(Torchvision, Parity, ::testing::Values("vgg16", "googlenet"));

}  // namespace
}  // namespace cnnvis
