// Deletion / insertion curves and average drop on a hand-made case with a known answer: the model's
// class-0 logit is c times the mean red value (class 1: logit 0), so its probability is
// sigmoid(c * mean red); the image is black except for a red square.
#include <algorithm>
#include <cmath>

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "cnnvis/core/errors.h"
#include "cnnvis/methods/evaluate.h"
#include "cnnvis/methods/gradcam.h"
#include "cnnvis/models/layers.h"
#include "cnnvis/models/network.h"
#include "tiny_models.h"

namespace cnnvis {
namespace {

constexpr int kSize = 16;
constexpr float kGain = 40.0f;

LoadedModel red_model() { return testing::red_model(kSize, kGain); }

double sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }

const cv::Rect kSquare(3, 5, 6, 4);  // 24 of 256 pixels

cv::Mat red_square() {
  cv::Mat image = cv::Mat::zeros(kSize, kSize, CV_32FC3);
  image(kSquare).setTo(cv::Scalar(1, 0, 0));
  return image;
}

TEST(Evaluate, DeletionCurveOfThePerfectMapIsKnown) {
  LoadedModel model = red_model();
  const cv::Mat image = red_square();
  cv::Mat perfect = cv::Mat::zeros(kSize, kSize, CV_32F);
  perfect(kSquare).setTo(1.0);
  EvaluateOptions options;
  options.steps = 64;  // 4 pixels per step
  options.batch_size = 7;
  const auto scores = score_explanations(model, {image}, {perfect}, {0}, options);
  ASSERT_EQ(scores.size(), 1u);
  const auto& s = scores[0];
  ASSERT_EQ(s.deletion.size(), 65u);
  const int n = kSize * kSize, square = kSquare.area();
  for (int k = 0; k <= options.steps; ++k) {
    const int removed = (n * k + options.steps - 1) / options.steps;
    const double expected = sigmoid(kGain * std::max(0, square - removed) / n);
    EXPECT_NEAR(s.deletion[k], expected, 1e-5) << "step " << k;
  }
  EXPECT_NEAR(s.probability, sigmoid(kGain * square / n), 1e-5);
  // Insertion from the blurred image (sigma = 16 / 45 -> 1 px minimum): the blurred copy's mean red,
  // then the square's pixels put back first.
  cv::Mat blurred;
  cv::GaussianBlur(image, blurred, cv::Size(0, 0), 1.0, 1.0, cv::BORDER_REFLECT);
  std::vector<cv::Mat> channels;
  cv::split(blurred, channels);
  cv::Mat red = channels[0].clone();
  int put_back = 0;
  for (int k = 0; k <= options.steps; ++k) {
    const int target = (n * k + options.steps - 1) / options.steps;
    // Pixels in the map's order: the square in raster order first, then the rest in raster order.
    for (; put_back < target; ++put_back) {
      int index = put_back;
      cv::Point p;
      if (index < square) {
        p = cv::Point(kSquare.x + index % kSquare.width, kSquare.y + index / kSquare.width);
      } else {
        index -= square;
        int seen = 0;
        for (int y = 0; y < kSize && seen <= index; ++y) {
          for (int x = 0; x < kSize && seen <= index; ++x) {
            if (kSquare.contains(cv::Point(x, y))) continue;
            if (seen++ == index) p = cv::Point(x, y);
          }
        }
      }
      red.at<float>(p) = kSquare.contains(p) ? 1.0f : 0.0f;
    }
    EXPECT_NEAR(s.insertion[k], sigmoid(kGain * cv::mean(red)[0]), 1e-5) << "insertion step " << k;
  }
  // The map masks nothing that matters: no drop.
  EXPECT_NEAR(s.masked_probability, s.probability, 1e-6);
  EXPECT_NEAR(s.drop, 0.0, 1e-6);
  EXPECT_FALSE(s.increase);
  EXPECT_NEAR(s.deletion_auc, curve_area(s.deletion), 1e-7);
}

TEST(Evaluate, GoodMapsScoreBetterThanBadOnes) {
  LoadedModel model = red_model();
  const cv::Mat image = red_square();
  cv::Mat good = cv::Mat::zeros(kSize, kSize, CV_32F), bad = cv::Mat::ones(kSize, kSize, CV_32F);
  good(kSquare).setTo(1.0);
  bad(kSquare).setTo(0.0);
  cv::Mat half = good * 0.5;
  const auto scores = score_explanations(model, {image, image, image}, {good, bad, half}, {0, 0, 0});
  EXPECT_LT(scores[0].deletion_auc, scores[1].deletion_auc);
  EXPECT_GT(scores[0].insertion_auc, scores[1].insertion_auc);
  // The bad map hides the square entirely: probability sigmoid(0) = 0.5.
  EXPECT_NEAR(scores[1].masked_probability, 0.5, 1e-6);
  // Maps are scaled to [0, 1] before masking, so half of the perfect map masks like the perfect map.
  EXPECT_NEAR(scores[2].drop, 0.0, 1e-6);
  const double p = sigmoid(kGain * 24.0 / 256);
  EXPECT_NEAR(scores[1].drop, (p - 0.5) / p, 1e-5);
}

TEST(Evaluate, CurveAreaIsTrapezoidal) {
  EXPECT_NEAR(curve_area({1, 0}), 0.5, 1e-7);
  EXPECT_NEAR(curve_area({1, 1, 1}), 1.0, 1e-7);
  EXPECT_NEAR(curve_area({0, 1, 0, 1}), 0.5, 1e-7);
}

TEST(Evaluate, RejectsBadInput) {
  LoadedModel model = red_model();
  const cv::Mat image = red_square();
  cv::Mat map = cv::Mat::zeros(kSize, kSize, CV_32F);
  EXPECT_THROW(score_explanations(model, {image}, {}, {0}), UsageError);
  EXPECT_THROW(score_explanations(model, {image}, {map}, {5}), UsageError);
  EvaluateOptions options;
  options.steps = 0;
  EXPECT_THROW(score_explanations(model, {image}, {map}, {0}, options), UsageError);
  EXPECT_THROW(explain(model, {image}, "nonsense"), UsageError);
}

TEST(Evaluate, EveryMethodNameExplainsTheImage) {
  // conv 1x1 -> ReLU -> max pool -> ReLU -> linear on 8 x 8 (no default CAM layer): every method beyond the
  // CAM family runs on it, LRP's presets, the SmoothGrad relatives, input x gradient and RISE included,
  // each giving a map at the input size.
  std::vector<float> fc(2 * 16);
  for (std::size_t i = 0; i < fc.size(); ++i) fc[i] = std::sin(0.7f * static_cast<float>(i));
  LoadedModel model = testing::tiny_conv_pool_linear_model(8, fc, 0.1f, {0.0f, 0.0f});
  cv::Mat image(8, 8, CV_32FC3);
  cv::randu(image, 0, 1);
  const auto names = explanation_method_names();
  for (const char* wanted : {"backprop-lrp-epsilon", "backprop-lrp-epsilon-plus-flat", "backprop-lrp-epsilon-plus-box",
                             "smoothgrad-squared", "vargrad", "input-x-gradient", "rise"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), wanted), names.end()) << wanted;
  }
  const auto cams = cam_method_names();
  cv::Mat saliency;
  for (const std::string& name : names) {
    if (std::find(cams.begin(), cams.end(), name) != cams.end()) continue;
    const std::vector<Explanation> e = explain(model, {image}, name, "1");
    ASSERT_EQ(e.size(), 1u) << name;
    EXPECT_EQ(e[0].target, 1) << name;
    ASSERT_EQ(e[0].map.size(), image.size()) << name;
    EXPECT_TRUE(cv::checkRange(e[0].map)) << name;
    EXPECT_GT(cv::norm(e[0].map, cv::NORM_INF), 0.0) << name;
    if (name == "saliency") saliency = e[0].map.clone();
    if (name == "input-x-gradient") {
      ASSERT_FALSE(saliency.empty());
      EXPECT_GT(cv::norm(e[0].map, saliency, cv::NORM_INF), 0.0) << "input x gradient is not the plain gradient";
    }
  }
  EXPECT_THROW(explain(model, {image}, "backprop-lrp-gamma"), UsageError);
}

}  // namespace
}  // namespace cnnvis
