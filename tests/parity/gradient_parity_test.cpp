// Gradient parity with torch: on the seeded random VGG16 of the parity fixture, our vanilla gradient,
// guided backpropagation, deconvnet and saliency map match those computed in Python
// (tests/parity/make_gradient_reference.py) within 1e-4 after scaling each map by its max |value|.
#include <filesystem>
#include <fstream>
#include <iostream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "cnnvis/io/npy.h"
#include "cnnvis/methods/backprop.h"
#include "cnnvis/methods/saliency.h"
#include "cnnvis/models/loaded_model.h"
#include "cnnvis/models/network.h"
#include "parity_helpers.h"

namespace cnnvis {
namespace {

namespace fs = std::filesystem;
const fs::path kParityDir = CNNVIS_PARITY_DIR;

cv::Mat scaled_by_max(const cv::Mat& m) {
  const double scale = cv::norm(m, cv::NORM_INF);
  return scale > 0 ? cv::Mat(m / scale) : m;
}

double normalised_difference(const cv::Mat& ours, const cv::Mat& reference) {
  EXPECT_EQ(ours.size(), reference.size());
  EXPECT_EQ(ours.type(), reference.type());
  EXPECT_GT(cv::norm(reference, cv::NORM_INF), 0.0);
  return cv::norm(scaled_by_max(ours), scaled_by_max(reference), cv::NORM_INF);
}

TEST(GradientParity, BackpropModesAndSaliencyMatchTorch) {
  const fs::path summary_file = kParityDir / "vgg16_gradients.json";
  ASSERT_TRUE(fs::exists(summary_file)) << "run the gradient_parity fixture first (ctest does): " << summary_file;
  nlohmann::json summary;
  std::ifstream(summary_file) >> summary;

  ModelLoadOptions load;
  load.model = "vgg16";
  load.weights = (kParityDir / "vgg16.safetensors").string();
  load.card = (kParityDir / "vgg16.json").string();
  LoadedModel model = LoadedModel::load(load);

  const int inputs = summary["inputs"];
  ASSERT_GE(inputs, 2);
  std::vector<cv::Mat> images;
  for (int i = 0; i < inputs; ++i) images.push_back(load_npy_input(kParityDir / ("vgg16_input" + std::to_string(i) + ".npy")));

  for (BackpropMode mode : {BackpropMode::vanilla, BackpropMode::guided, BackpropMode::deconv}) {
    // Each image alone, with the reference's target: Python explains the top class of each image.
    for (int i = 0; i < inputs; ++i) {
      BackpropOptions options;
      options.mode = mode;
      options.target = std::to_string(summary["targets"][i].get<int>());
      const BackpropResult r = run_backprop(model, {images[i]}, options).at(0);
      EXPECT_EQ(r.top.front().index, summary["targets"][i].get<int>()) << "top class differs from torch";
      const fs::path dir = kParityDir / ("vgg16_input" + std::to_string(i) + "_gradients");
      const cv::Mat reference = load_npy_map(dir / (std::string(backprop_mode_name(mode)) + ".npy"));
      const double error = normalised_difference(r.gradient, reference);
      EXPECT_LE(error, 1e-4) << backprop_mode_name(mode) << " input " << i;
      std::cout << backprop_mode_name(mode) << " input " << i << ": max normalised difference " << error << "\n";
    }
  }
  EXPECT_EQ(model.network().relu_mode(), ReluMode::standard);

  // Saliency of both images in one batch, top class.
  const auto saliency = run_saliency(model, images, SaliencyOptions{});
  for (int i = 0; i < inputs; ++i) {
    EXPECT_EQ(saliency[i].target.index, summary["targets"][i].get<int>());
    const fs::path dir = kParityDir / ("vgg16_input" + std::to_string(i) + "_gradients");
    const double error = normalised_difference(saliency[i].map, load_npy_map(dir / "saliency.npy"));
    EXPECT_LE(error, 1e-4) << "saliency input " << i;
    std::cout << "saliency input " << i << ": max normalised difference " << error << "\n";
  }
}

}  // namespace
}  // namespace cnnvis
