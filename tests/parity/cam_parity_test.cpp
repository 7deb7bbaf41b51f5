// Parity of the Grad-CAM family with reference computations in Python (tests/parity/make_cam_reference.py)
// on the seeded random VGG16 and GoogLeNet: max abs difference <= 1e-4 on normalised maps.
#include <filesystem>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include "cnnvis/io/npy.h"
#include "cnnvis/methods/gradcam.h"
#include "cnnvis/models/loaded_model.h"
#include "parity_helpers.h"

namespace cnnvis {
namespace {

namespace fs = std::filesystem;
const fs::path kParityDir = CNNVIS_PARITY_DIR;

cv::Mat normalise(const cv::Mat& m) {
  double lo, hi;
  cv::minMaxLoc(m, &lo, &hi);
  return (m - lo) / (hi - lo + 1e-7);
}

class CamParity : public ::testing::TestWithParam<std::string> {};

TEST_P(CamParity, FamilyMatchesPythonReference) {
  const std::string arch = GetParam();
  ASSERT_TRUE(fs::exists(kParityDir / "cam")) << "run the parity fixtures first (ctest does)";
  ModelLoadOptions options;
  options.model = arch;
  options.weights = (kParityDir / (arch + ".safetensors")).string();
  options.card = (kParityDir / (arch + ".json")).string();
  LoadedModel model = LoadedModel::load(options);
  std::vector<std::string> methods = {"gradcam", "gradcam++", "xgradcam", "layercam", "hirescam", "eigencam",
                                      "eigengradcam"};
  if (arch == "googlenet") methods.push_back("cam");
  CamRequest request;
  request.methods.clear();
  for (const auto& m : methods) request.methods.push_back(parse_cam_method(m));
  std::vector<cv::Mat> inputs;
  for (int i = 0; fs::exists(kParityDir / (arch + "_input" + std::to_string(i) + ".npy")); ++i) {
    inputs.push_back(load_npy_input(kParityDir / (arch + "_input" + std::to_string(i) + ".npy")));
  }
  ASSERT_GE(inputs.size(), 2u);
  // All inputs in one batch: each image's maps must not depend on the others.
  const std::vector<ImageCams> cams = run_cams(model, inputs, request);
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    ASSERT_EQ(cams[i].maps.size(), methods.size());
    for (std::size_t m = 0; m < methods.size(); ++m) {
      const cv::Mat reference = load_npy_map(kParityDir / "cam" / (arch + "_" + methods[m] + "_" + std::to_string(i) + ".npy"));
      const cv::Mat& ours = cams[i].maps[m].cam_layer;
      ASSERT_EQ(ours.size(), reference.size()) << methods[m];
      const double diff = cv::norm(normalise(ours), normalise(reference), cv::NORM_INF);
      EXPECT_LE(diff, 1e-4) << arch << " " << methods[m] << " input " << i;
      EXPECT_GT(cv::norm(reference, cv::NORM_INF), 0) << "degenerate reference " << methods[m];
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Python, CamParity, ::testing::Values("vgg16", "googlenet"));

}  // namespace
}  // namespace cnnvis
