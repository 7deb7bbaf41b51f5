// Parity of the native Lucid InceptionV1 (inception5h) with a PyTorch implementation of the lucent
// layout (tests/parity/make_inception5h_reference.py): seeded random weights written by
// scripts/export_inception5h.py, Lucid's named layers and the logits within 1e-4 relative on two inputs,
// fed through the card's normalisation (x * 255 - 117).
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <iostream>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "cnnvis/io/npy.h"
#include "cnnvis/methods/tensor_image.h"
#include "cnnvis/models/loaded_model.h"
#include "cnnvis/models/network.h"
#include "parity_helpers.h"

namespace cnnvis {
namespace {

namespace fs = std::filesystem;
const fs::path kParityDir = CNNVIS_PARITY_DIR;

TEST(Inception5hParity, LucidLayersAndLogitsMatchTheTorchReference) {
  const fs::path weights = kParityDir / "inception5h.safetensors";
  ASSERT_TRUE(fs::exists(weights)) << "run the inception5h_export fixture first (ctest does): " << weights;
  ModelLoadOptions options;
  options.model = "inception5h";
  options.weights = weights.string();
  options.card = (kParityDir / "inception5h.json").string();
  LoadedModel model = LoadedModel::load(options);
  EXPECT_EQ(model.num_classes(), 1008);
  EXPECT_EQ(model.card().input_range, 255.0f);
  Network& net = model.network();

  ForwardRequest request;
  request.taps = {"conv2d0", "conv2d1", "conv2d2", "mixed3a", "mixed3b", "mixed4a", "mixed4b", "mixed4c",
                  "mixed4c_3x3", "mixed4d", "mixed4e", "mixed5a", "mixed5b"};
  for (const auto& name : request.taps) ASSERT_NE(net.find_node(name), nullptr) << name;
  EXPECT_EQ(model.resolve_layer("logits"), "softmax2_pre_activation_matmul");

  for (int i = 0; i < 2; ++i) {
    const fs::path dir = kParityDir / ("inception5h_input" + std::to_string(i));
    const at::Tensor image = load_npy_tensor(kParityDir / ("inception5h_input" + std::to_string(i) + ".npy"));
    // The card's way in: [0, 1] RGB -> HWC float image -> images_to_tensor (x * 255 - 117).
    cv::Mat hwc(224, 224, CV_32FC3);
    at::Tensor permuted = image[0].permute({1, 2, 0}).contiguous();
    std::memcpy(hwc.ptr<float>(), permuted.data_ptr<float>(), sizeof(float) * permuted.numel());
    at::NoGradGuard no_grad;
    const ForwardResult result = net.forward(images_to_tensor({hwc}, model.card(), at::kCPU), request);
    double worst = 0;
    for (const std::string& name : request.taps) {
      const at::Tensor reference = load_npy_tensor(dir / (name + ".npy"));
      const at::Tensor& ours = result.taps.at(name);
      ASSERT_EQ(ours.sizes(), reference.sizes()) << name;
      const double error = relative_error(ours, reference);
      EXPECT_LE(error, 1e-4) << "input " << i << " layer " << name;
      worst = std::max(worst, error);
    }
    const at::Tensor logits = load_npy_tensor(dir / "logits.npy");
    EXPECT_LE(relative_error(result.logits, logits), 1e-4) << "logits, input " << i;
    EXPECT_EQ(result.logits.argmax(1).item<int64_t>(), logits.argmax(1).item<int64_t>());
    std::cout << "inception5h input " << i << ": worst relative error " << worst << ", logits "
              << relative_error(result.logits, logits) << "\n";
  }
}

}  // namespace
}  // namespace cnnvis
