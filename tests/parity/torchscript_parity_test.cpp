// Parity of TorchScript models with PyTorch eager (tests/parity/make_torchscript_reference.py): logits,
// activations at module paths, Grad-CAM, input gradients (vanilla; guided and deconvnet with ReLU and
// ReLU6), SmoothGrad (the reference draws cnnvis's noise), integrated gradients and Ablation-CAM (the
// algorithm of pytorch-grad-cam's AblationCAM) of seeded random ResNet-18 (traced and scripted),
// MobileNetV2, EfficientNet-B0 and a network whose ReLUs are all functional calls, loaded from the .pt.
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <utility>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "cnnvis/methods/backprop.h"
#include "cnnvis/methods/gradcam.h"
#include "cnnvis/methods/saliency.h"
#include "cnnvis/models/loaded_model.h"
#include "cnnvis/models/network.h"
#include "parity_helpers.h"

namespace cnnvis {
namespace {

namespace fs = std::filesystem;
const fs::path kDir = fs::path(CNNVIS_PARITY_DIR) / "ts";

double scaled_difference(const cv::Mat& ours, const cv::Mat& reference) {
  EXPECT_EQ(ours.size(), reference.size());
  EXPECT_EQ(ours.type(), reference.type());
  const double a = cv::norm(ours, cv::NORM_INF), b = cv::norm(reference, cv::NORM_INF);
  EXPECT_GT(b, 0.0) << "degenerate reference";
  return cv::norm(ours / (a > 0 ? a : 1), reference / (b > 0 ? b : 1), cv::NORM_INF);
}

at::Tensor normalised_input(const cv::Mat& rgb) {
  at::Tensor x = at::from_blob(const_cast<float*>(rgb.ptr<float>()), {1, rgb.rows, rgb.cols, 3}, at::kFloat)
                     .permute({0, 3, 1, 2})
                     .clone();
  const at::Tensor mean = at::tensor({0.485f, 0.456f, 0.406f}).view({1, 3, 1, 1});
  const at::Tensor std = at::tensor({0.229f, 0.224f, 0.225f}).view({1, 3, 1, 1});
  return (x - mean) / std;
}

nlohmann::json summary() {
  const fs::path file = kDir / "summary.json";
  EXPECT_TRUE(fs::exists(file)) << "run the torchscript parity fixture first (ctest does): " << file;
  nlohmann::json j;
  std::ifstream(file) >> j;
  return j;
}

TEST(TorchScriptParity, LogitsAndActivationsAtModulePaths) {
  const auto s = summary();
  for (const auto& entry : s["models"]) {
    const std::string name = entry["name"];
    ModelLoadOptions options;
    options.model = (kDir / (name + ".pt")).string();
    LoadedModel model = LoadedModel::load(options);
    EXPECT_EQ(model.num_classes(), 10) << name;
    EXPECT_EQ(model.card().input_height, s["size"].get<int>()) << "the card beside the .pt is read";
    for (int i = 0; i < s["inputs"].get<int>(); ++i) {
      const std::string suffix = "_" + std::to_string(i) + ".npy";
      ForwardRequest request;
      request.taps = entry["layers"].get<std::vector<std::string>>();
      at::NoGradGuard no_grad;
      const at::Tensor x = normalised_input(load_npy_input(kDir / (name + "_input" + std::to_string(i) + ".npy")));
      const ForwardResult result = model.network().forward(x, request);
      const double logit_error =
          relative_error(result.logits, load_npy_tensor(kDir / (name + "_logits" + std::to_string(i) + ".npy")));
      EXPECT_LE(logit_error, 1e-4) << name << " logits, input " << i;
      for (const auto& layer : request.taps) {
        const at::Tensor reference = load_npy_tensor(kDir / (name + "_act_" + layer + suffix));
        const at::Tensor ours = result.taps.at(layer)[0];
        ASSERT_EQ(ours.sizes(), reference.sizes()) << name << " " << layer;
        const double error = relative_error(ours, reference);
        EXPECT_LE(error, 1e-4) << name << " " << layer << ", input " << i;
        std::cout << name << " " << layer << " input " << i << ": relative error " << error << "\n";
      }
      // Only the layers asked for: the graph is cut after the last one and gives the same values.
      request.need_logits = false;
      const ForwardResult cut = model.network().forward(x, request);
      EXPECT_FALSE(cut.logits.defined());
      for (const auto& layer : request.taps) EXPECT_TRUE(at::equal(cut.taps.at(layer), result.taps.at(layer))) << layer;
    }
  }
}

TEST(TorchScriptParity, GradCamAndInputGradientsMatchEager) {
  const auto s = summary();
  for (const auto& entry : s["models"]) {
    const std::string name = entry["name"];
    ModelLoadOptions options;
    options.model = (kDir / (name + ".pt")).string();
    LoadedModel model = LoadedModel::load(options);
    std::vector<cv::Mat> inputs;
    for (int i = 0; i < s["inputs"].get<int>(); ++i) {
      inputs.push_back(load_npy_input(kDir / (name + "_input" + std::to_string(i) + ".npy")));
    }
    CamRequest cam;
    cam.layers = {entry["cam_layer"].get<std::string>()};
    const auto cams = run_cams(model, inputs, cam);  // one batch: images stay independent
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const std::string suffix = "_" + std::to_string(i) + ".npy";
      const int target = entry["targets"][i];
      ASSERT_EQ(cams[i].maps.size(), 1u);
      EXPECT_EQ(cams[i].maps[0].target.index, target) << name;
      const double cam_error = scaled_difference(cams[i].maps[0].cam_layer, load_npy_map(kDir / (name + "_gradcam" + suffix)));
      EXPECT_LE(cam_error, 1e-4) << name << " gradcam, input " << i;
      std::cout << name << " gradcam input " << i << ": " << cam_error << "\n";
      std::vector<BackpropMode> modes = {BackpropMode::vanilla};
      if (entry["guided"].get<bool>()) modes.insert(modes.end(), {BackpropMode::guided, BackpropMode::deconv});
      for (BackpropMode mode : modes) {
        BackpropOptions bp;
        bp.mode = mode;
        bp.target = std::to_string(target);
        const BackpropResult r = run_backprop(model, {inputs[i]}, bp).at(0);
        const double error = scaled_difference(r.gradient, load_npy_map(kDir / (name + "_" + backprop_mode_name(mode) + suffix)));
        EXPECT_LE(error, 1e-4) << name << " " << backprop_mode_name(mode) << ", input " << i;
        std::cout << name << " " << backprop_mode_name(mode) << " input " << i << ": " << error << "\n";
      }
    }
    EXPECT_EQ(model.network().relu_mode(), ReluMode::standard);
  }
}

TEST(TorchScriptParity, SmoothGradAndIntegratedGradientsMatchEager) {
  const auto s = summary();
  SaliencyOptions smooth;
  smooth.method = SaliencyMethod::smoothgrad;
  smooth.smooth_samples = s["smooth"]["samples"].get<int>();
  smooth.noise = s["smooth"]["noise"].get<float>();
  smooth.seed = s["smooth"]["seed"].get<std::uint64_t>();
  SaliencyOptions integrated;
  integrated.method = SaliencyMethod::integrated;
  integrated.integrated_steps = s["integrated_steps"].get<int>();
  int checked = 0;
  for (const auto& entry : s["models"]) {
    if (!entry["saliency"].get<bool>()) continue;
    ++checked;
    const std::string name = entry["name"];
    ModelLoadOptions options;
    options.model = (kDir / (name + ".pt")).string();
    LoadedModel model = LoadedModel::load(options);
    const cv::Mat input = load_npy_input(kDir / (name + "_input0.npy"));
    for (auto [method, file] : {std::pair{smooth, "smoothgrad"}, std::pair{integrated, "integrated"}}) {
      method.target = std::to_string(entry["targets"][0].get<int>());
      const SaliencyResult r = run_saliency(model, {input}, method).at(0);
      const cv::Mat reference = load_npy_map(kDir / (name + "_" + file + "_0.npy"));
      const double error = scaled_difference(r.gradient, reference);
      EXPECT_LE(error, 1e-4) << name << " " << file;
      std::cout << name << " " << file << ": " << error << "\n";
      if (file == std::string("smoothgrad")) {
        // Not the vanilla gradient: the noise is there (and drawn as the reference drew it).
        SaliencyOptions vanilla;
        vanilla.method = SaliencyMethod::vanilla;
        vanilla.target = method.target;
        const double from_vanilla = scaled_difference(run_saliency(model, {input}, vanilla).at(0).gradient, reference);
        EXPECT_GT(from_vanilla, 100 * error) << name << ": SmoothGrad is no different from the vanilla gradient";
      }
    }
  }
  EXPECT_GE(checked, 2) << "the reference has SmoothGrad for fewer models than it should";
}

TEST(TorchScriptParity, AblationCamMatchesPytorchGradCamAlgorithm) {
  const auto s = summary();
  int checked = 0;
  for (const auto& entry : s["models"]) {
    if (!entry.contains("ablation")) continue;
    const std::string name = entry["name"];
    ModelLoadOptions options;
    options.model = (kDir / (name + ".pt")).string();
    LoadedModel model = LoadedModel::load(options);
    CamRequest cam;
    cam.methods = {CamMethod::ablationcam};
    cam.layers = {entry["ablation"]["layer"].get<std::string>()};
    const std::vector<int> which = entry["ablation"]["inputs"].get<std::vector<int>>();
    std::vector<cv::Mat> inputs;
    for (int i : which) inputs.push_back(load_npy_input(kDir / (name + "_input" + std::to_string(i) + ".npy")));
    const auto cams = run_cams(model, inputs, cam);
    for (std::size_t k = 0; k < which.size(); ++k) {
      const int i = which[k];
      ASSERT_EQ(cams[k].maps.size(), 1u);
      EXPECT_EQ(cams[k].maps[0].target.index, entry["targets"][i].get<int>()) << name;
      const cv::Mat reference = load_npy_map(kDir / (name + "_ablationcam_" + std::to_string(i) + ".npy"));
      const double error = scaled_difference(cams[k].maps[0].cam_layer, reference);
      EXPECT_LE(error, 1e-4) << name << " ablationcam, input " << i;
      std::cout << name << " ablationcam input " << i << ": " << error << "\n";
      ++checked;
    }
  }
  EXPECT_GE(checked, 3) << "the reference names fewer Ablation-CAM maps than it should";
}

}  // namespace
}  // namespace cnnvis
