// Occlusion sensitivity: the window rule, a hand-computed map, and the incremental engine against brute
// force on small networks (odd sizes, ceil-mode and padded pools, strided convs, BatchNorm) and on the
// real VGG16 / GoogLeNet / fashion_vgg architectures with seeded random weights at reduced input sizes.
#include <cmath>

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "cnnvis/core/errors.h"
#include "cnnvis/methods/occlusion.h"
#include "cnnvis/models/architectures.h"
#include "cnnvis/models/layers.h"
#include "cnnvis/models/network.h"

namespace cnnvis {
namespace {

ModelCard card_for(const std::string& name, int height, int width, int classes) {
  ModelCard card;
  card.name = card.architecture = name;
  card.input_height = height;
  card.input_width = width;
  for (int c = 0; c < classes; ++c) card.labels.push_back("class" + std::to_string(c));
  return card;
}

cv::Mat random_image(int height, int width, unsigned seed) {
  cv::Mat image(height, width, CV_32FC3);
  cv::RNG rng(seed);
  rng.fill(image, cv::RNG::UNIFORM, 0.0, 1.0);
  // Some structure, so that windows differ more than noise does.
  cv::circle(image, cv::Point(width / 3, height / 2), std::max(2, height / 5), cv::Scalar(1, 0.2, 0), -1);
  return image;
}

// conv3x3 p1 - BN - ReLU - maxpool 3/2 ceil - conv3x3 s2 p1 - ReLU - maxpool 2/2 p1 - conv1x1 - ReLU
// - GAP - flatten - linear: every kind of window the incremental engine handles, with odd sizes.
LoadedModel small_model(int height, int width) {
  at::manual_seed(7);
  auto root = std::make_unique<Sequential>("", "Small");
  auto* features = root->add(std::make_unique<Sequential>("features"));
  features->add(std::make_unique<Conv2d>("features.0", 3, 8, 3, 1, 1));
  auto* bn = features->add(std::make_unique<BatchNorm2d>("features.1", 8));
  features->add(std::make_unique<ReLU>("features.2"));
  features->add(std::make_unique<MaxPool2d>("features.3", 3, 2, 0, true));
  features->add(std::make_unique<Conv2d>("features.4", 8, 12, 3, 2, 1));
  features->add(std::make_unique<ReLU>("features.5"));
  features->add(std::make_unique<MaxPool2d>("features.6", 2, 2, 1, false));
  features->add(std::make_unique<Conv2d>("features.7", 12, 16, 1));
  features->add(std::make_unique<ReLU>("features.8"));
  root->add(std::make_unique<AdaptiveAvgPool2d>("avgpool", 1));
  root->add(std::make_unique<Flatten>("flatten"));
  root->add(std::make_unique<Linear>("fc", 16, 5));
  auto* fc = root->children().back();
  auto net = std::make_unique<Network>("small", std::move(root), 5);
  net->initialize_parameters();
  {
    at::NoGradGuard no_grad;
    // Logits a few units apart, like a trained network's (the default init gives near-equal logits
    // and maps too flat to tell a wrong engine from a right one).
    static_cast<Linear*>(fc)->weight.normal_(0.0, 1.0);
    bn->running_mean.uniform_(-0.3, 0.3);
    bn->running_var.uniform_(0.5, 2.0);
    bn->weight.uniform_(0.5, 1.5);
    bn->bias.uniform_(-0.2, 0.2);
  }
  return LoadedModel::from_network(std::move(net), card_for("small", height, width, 5), "cpu");
}

double max_abs(const cv::Mat& m) {
  double lo = 0, hi = 0;
  cv::minMaxLoc(m, &lo, &hi);
  return std::max(std::abs(lo), std::abs(hi));
}

// Runs both engines and checks that the maps match to 1e-4 relative to the map's scale, and that the
// maps are not trivially small (a test of a map that is all zero could not fail).
void expect_engines_agree(LoadedModel& model, const cv::Mat& image, OcclusionOptions options, const std::string& what) {
  options.exact_naive = true;
  const auto naive = run_occlusion(model, {image}, options);
  options.exact_naive = false;
  const auto fast = run_occlusion(model, {image}, options);
  ASSERT_EQ(naive.size(), 1u);
  ASSERT_EQ(fast.size(), 1u);
  EXPECT_EQ(fast[0].engine, "incremental");
  EXPECT_EQ(naive[0].target.index, fast[0].target.index) << what;
  const double scale = std::max(1.0, max_abs(naive[0].map));
  EXPECT_GT(max_abs(naive[0].map), 1e-3) << what << ": the map is too flat to compare";
  EXPECT_LE(cv::norm(naive[0].map, fast[0].map, cv::NORM_INF), 1e-4 * scale) << what;
  EXPECT_LE(cv::norm(naive[0].window_drops, fast[0].window_drops, cv::NORM_INF), 1e-4 * scale) << what;
  EXPECT_LE(cv::norm(naive[0].occluded_score, fast[0].occluded_score, cv::NORM_INF),
            1e-4 * std::max(1.0, max_abs(naive[0].occluded_score)))
      << what;
}

TEST(Occlusion, WindowsCoverTheImageAndEndAtTheBorder) {
  // 10 px, patch 4, stride 3: ceil(6/3) + 1 = 3 windows at 0, 3, 6.
  auto w = occlusion_windows(1, 10, 1, 1);
  EXPECT_EQ(w.size(), 10u);
  w = occlusion_windows(4, 10, 4, 3);
  ASSERT_EQ(w.size(), 3u);
  EXPECT_EQ(w[0], cv::Rect(0, 0, 4, 4));
  EXPECT_EQ(w[1], cv::Rect(3, 0, 4, 4));
  EXPECT_EQ(w[2], cv::Rect(6, 0, 4, 4));
  // 11 px: ceil(7/3) + 1 = 4 windows; the last one moves back to end at the border.
  w = occlusion_windows(4, 11, 4, 3);
  ASSERT_EQ(w.size(), 4u);
  EXPECT_EQ(w[3], cv::Rect(7, 0, 4, 4));
  // A patch larger than the image is clipped to it.
  w = occlusion_windows(5, 6, 8, 2);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0], cv::Rect(0, 0, 6, 5));
  EXPECT_THROW(occlusion_windows(5, 5, 0, 1), UsageError);
  EXPECT_THROW(occlusion_windows(5, 5, 2, 0), UsageError);
}

TEST(Occlusion, LinearModelGivesTheHandComputedMap) {
  // logit = w . (mean over pixels of the image), mean fill = 0: the drop of a window is w . (sum of the
  // window's pixels) / (H W), and the map averages the drops of the windows covering each pixel.
  const int h = 7, w = 9;
  auto root = std::make_unique<Sequential>("", "Linear");
  root->add(std::make_unique<AdaptiveAvgPool2d>("gap", 1));
  root->add(std::make_unique<Flatten>("flatten"));
  auto* fc = root->add(std::make_unique<Linear>("fc", 3, 2));
  fc->weight = at::tensor({1.0f, -2.0f, 0.5f, 0.0f, 1.0f, 0.0f}).view({2, 3});
  fc->bias = at::zeros({2});
  ModelCard card = card_for("linear", h, w, 2);
  card.mean = {0, 0, 0};
  card.std = {1, 1, 1};
  LoadedModel model = LoadedModel::from_network(std::make_unique<Network>("linear", std::move(root), 2), card, "cpu");
  const cv::Mat image = random_image(h, w, 3);
  OcclusionOptions options;
  options.patch = 3;
  options.stride = 2;
  options.target = "0";
  for (bool naive : {true, false}) {
    options.exact_naive = naive;
    const auto result = run_occlusion(model, {image}, options)[0];
    const auto windows = occlusion_windows(h, w, 3, 2);
    ASSERT_EQ(result.windows.size(), windows.size());
    cv::Mat sum = cv::Mat::zeros(h, w, CV_64F), count = cv::Mat::zeros(h, w, CV_64F);
    for (const cv::Rect& r : windows) {
      const cv::Scalar s = cv::sum(image(r));
      const double drop = (1.0 * s[0] - 2.0 * s[1] + 0.5 * s[2]) / (h * w);
      sum(r) += drop;
      count(r) += 1.0;
    }
    cv::Mat expected = sum / count;
    expected.convertTo(expected, CV_32F);
    EXPECT_LE(cv::norm(result.map, expected, cv::NORM_INF), 1e-5) << (naive ? "naive" : "incremental");
    EXPECT_EQ(result.window_drops.rows, 3);
    EXPECT_EQ(result.window_drops.cols, 4);
  }
}

TEST(Occlusion, IncrementalEqualsBruteForceOnSmallNetwork) {
  LoadedModel model = small_model(23, 19);
  const cv::Mat image = random_image(23, 19, 11);
  struct Setting {
    int patch, stride;
    OcclusionFill fill;
    OcclusionMeasure measure;
    int batch;
  };
  const Setting settings[] = {
      {5, 3, OcclusionFill::mean, OcclusionMeasure::logit, 4},  {4, 4, OcclusionFill::zero, OcclusionMeasure::logit, 7},
      {7, 5, OcclusionFill::gray, OcclusionMeasure::prob, 3},   {6, 2, OcclusionFill::blur, OcclusionMeasure::logit, 16},
      {1, 6, OcclusionFill::zero, OcclusionMeasure::logit, 5},  {30, 4, OcclusionFill::gray, OcclusionMeasure::logit, 2},
      {11, 8, OcclusionFill::zero, OcclusionMeasure::prob, 1},
  };
  for (const Setting& s : settings) {
    OcclusionOptions options;
    options.patch = s.patch;
    options.stride = s.stride;
    options.fill = s.fill;
    options.measure = s.measure;
    options.batch_size = s.batch;
    options.target = s.measure == OcclusionMeasure::prob ? "top" : "2";
    expect_engines_agree(model, image, options,
                         "patch " + std::to_string(s.patch) + " stride " + std::to_string(s.stride) + " fill " +
                             occlusion_fill_name(s.fill));
  }
}

TEST(Occlusion, IncrementalEqualsBruteForceOnVgg16) {
  // The real architecture with seeded random weights, at 64 px so CI stays cheap (the 7x7 adaptive pool
  // then upsamples from 2x2, which the engine computes in full).
  at::manual_seed(3);
  auto net = build_vgg16(10);
  net->initialize_parameters();
  {
    // Logits a few units apart, like a trained network's, so that the maps are far from flat.
    at::NoGradGuard no_grad;
    static_cast<Linear*>(const_cast<Node*>(net->find_node("classifier.6")))->weight.mul_(100.0);
  }
  LoadedModel model = LoadedModel::from_network(std::move(net), card_for("vgg16", 64, 64, 10), "cpu");
  const cv::Mat image = random_image(64, 64, 5);
  OcclusionOptions options;
  options.patch = 20;
  options.stride = 16;  // 4 x 4 windows at 0, 16, 32 and 44 (the last moved back to the border)
  options.batch_size = 8;
  expect_engines_agree(model, image, options, "vgg16 patch 20 stride 16");
  options.patch = 8;
  options.stride = 20;
  options.fill = OcclusionFill::blur;
  options.measure = OcclusionMeasure::prob;
  expect_engines_agree(model, image, options, "vgg16 patch 8 stride 20 blur prob");
  const OcclusionPlan plan = plan_occlusion(model, options);
  EXPECT_GT(plan.incremental_layers, 10u);  // at least the first three conv blocks run on regions
  EXPECT_LT(plan.incremental_layers, plan.layers);
}

TEST(Occlusion, IncrementalEqualsBruteForceOnFashionVgg) {
  at::manual_seed(4);
  auto net = build_fashion_vgg(10);
  LoadedModel model = LoadedModel::from_network(std::move(net), card_for("fashion_vgg", 64, 64, 10), "cpu");
  const cv::Mat image = random_image(64, 64, 8);
  OcclusionOptions options;
  options.patch = 12;
  options.stride = 7;
  options.batch_size = 16;
  expect_engines_agree(model, image, options, "fashion_vgg patch 12 stride 7");
  const OcclusionPlan plan = plan_occlusion(model, options);
  EXPECT_EQ(plan.reason, "global layer (AdaptiveAvgPool2d)") << plan.full_from;
}

TEST(Occlusion, GoogLeNetFallsBackToFullComputationAtTheFirstInceptionBlock) {
  at::manual_seed(5);
  auto net = build_googlenet(true, 10);
  net->initialize_parameters();
  LoadedModel model = LoadedModel::from_network(std::move(net), card_for("googlenet", 64, 64, 10), "cpu");
  OcclusionOptions options;
  options.patch = 16;
  options.stride = 16;
  const OcclusionPlan plan = plan_occlusion(model, options);
  EXPECT_EQ(plan.full_from, "inception3a");
  EXPECT_EQ(plan.reason, "no local rule for parallel branches");
  expect_engines_agree(model, random_image(64, 64, 9), options, "googlenet patch 16 stride 16");
}

TEST(Occlusion, RejectsBadOptions) {
  LoadedModel model = small_model(12, 12);
  const cv::Mat image = random_image(12, 12, 1);
  OcclusionOptions options;
  options.batch_size = 0;
  EXPECT_THROW(run_occlusion(model, {image}, options), UsageError);
  options = {};
  options.target = "99";
  EXPECT_THROW(run_occlusion(model, {image}, options), UsageError);
  EXPECT_THROW(parse_occlusion_fill("noise"), UsageError);
  EXPECT_THROW(parse_occlusion_measure("loss"), UsageError);
}

}  // namespace
}  // namespace cnnvis
