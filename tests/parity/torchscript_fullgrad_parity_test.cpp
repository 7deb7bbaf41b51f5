// FullGrad on TorchScript models against pytorch-grad-cam's algorithm in PyTorch eager
// (tests/parity/make_torchscript_fullgrad_reference.py): the bias of every Conv2d and BatchNorm2d module
// is read from the loaded module, and the gradient at its output from a tap of the rewritten graph.
#include <filesystem>
#include <fstream>
#include <iostream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "cnnvis/methods/full_grad.h"
#include "cnnvis/methods/gradcam.h"
#include "cnnvis/models/loaded_model.h"
#include "cnnvis/models/network.h"
#include "parity_helpers.h"

namespace cnnvis {
namespace {

namespace fs = std::filesystem;
const fs::path kDir = fs::path(CNNVIS_PARITY_DIR) / "ts_fullgrad";

cv::Mat normalise(const cv::Mat& m) {
  double lo = 0, hi = 0;
  cv::minMaxLoc(m, &lo, &hi);
  return (m - lo) / (hi - lo + 1e-7);
}

TEST(TorchScriptFullGradParity, MatchesEagerWithEveryBiasTerm) {
  const fs::path summary_file = kDir / "summary.json";
  ASSERT_TRUE(fs::exists(summary_file)) << "run the fixture first (ctest does): " << summary_file;
  nlohmann::json summary;
  std::ifstream(summary_file) >> summary;
  ASSERT_EQ(summary["models"].size(), 3u);
  std::vector<cv::Mat> inputs;
  for (int i = 0; i < summary["inputs"].get<int>(); ++i) {
    inputs.push_back(load_npy_input(kDir / ("input" + std::to_string(i) + ".npy")));
  }
  for (const auto& entry : summary["models"]) {
    const std::string name = entry["name"];
    ModelLoadOptions options;
    options.model = (kDir / (name + ".pt")).string();
    LoadedModel model = LoadedModel::load(options);
    // Every Conv2d with a bias and every BatchNorm2d that PyTorch's module walk finds.
    EXPECT_EQ(biased_layers(model.network()).size(), entry["biased_layers"].get<std::size_t>()) << name;
    CamRequest request;
    request.methods = {CamMethod::fullgrad};
    const std::vector<ImageCams> cams = run_cams(model, inputs, request);  // one batch
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const std::string suffix = "_" + std::to_string(i) + ".npy";
      ASSERT_EQ(cams[i].maps.size(), 1u);
      EXPECT_EQ(cams[i].maps[0].target.index, entry["targets"][i].get<int>()) << name;
      const cv::Mat reference = load_npy_map(kDir / (name + "_fullgrad" + suffix));
      const cv::Mat input_term = load_npy_map(kDir / (name + "_inputterm" + suffix));
      const cv::Mat& ours = cams[i].maps[0].cam_layer;
      ASSERT_EQ(ours.size(), reference.size()) << name;
      const double diff = cv::norm(normalise(ours), normalise(reference), cv::NORM_INF);
      // The bound of the built-in networks' FullGrad parity (cam_parity_test): every channel of every
      // bias term is min-max normalised on its own, which magnifies float32 rounding.
      const double bound = 5e-3;
      EXPECT_LE(diff, bound) << name << " input " << i;
      // Without its bias terms the map would fail that bound: they are really read.
      EXPECT_GT(cv::norm(normalise(input_term), normalise(reference), cv::NORM_INF), 10 * bound) << name;
      std::cout << name << " fullgrad input " << i << ": " << diff << "\n";
    }
  }
}

}  // namespace
}  // namespace cnnvis
