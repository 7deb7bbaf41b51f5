#include "cnnvis/methods/movie_frames.h"

#include <vector>

#include <gtest/gtest.h>

namespace cnnvis {
namespace {

std::vector<cv::Mat> sample_images(int n) {
  std::vector<cv::Mat> images;
  for (int i = 0; i < n; ++i) images.emplace_back(64, 64, CV_8UC3, cv::Scalar(20 * i, 100, 200 - 15 * i));
  return images;
}

TEST(TrainingMovieFrame, ZeroIsWhitePositiveBlueNegativeRed) {
  const int n = 3;
  // Channels: 0 all zero, 1 positive, 2 negative, 3 the maximum |value| of the frame.
  std::vector<std::vector<cv::Mat>> maps(n);
  for (int s = 0; s < n; ++s) {
    maps[s].push_back(cv::Mat::zeros(8, 8, CV_32F));
    maps[s].push_back(cv::Mat(8, 8, CV_32F, cv::Scalar(1.5f)));
    maps[s].push_back(cv::Mat(8, 8, CV_32F, cv::Scalar(-1.5f)));
    maps[s].push_back(cv::Mat(16, 16, CV_32F, cv::Scalar(s == 0 ? 3.0f : 0.0f)));
  }
  const std::vector<int> ids = {0, 1, 2, 3};
  const ActivationFrameStyle style;
  const cv::Mat frame = render_activation_frame(sample_images(n), maps, ids, "features.0", 7, 0.0f, style);
  ASSERT_EQ(frame.type(), CV_8UC3);
  const cv::Rect last = activation_frame_cell(n - 1, ids.size() - 1, style);
  EXPECT_GE(frame.cols, last.x + last.width);
  EXPECT_GE(frame.rows, last.y + last.height);

  for (int s = 0; s < n; ++s) {
    const cv::Mat zero = frame(activation_frame_cell(s, 0, style));
    for (int y = 0; y < zero.rows; ++y)
      for (int x = 0; x < zero.cols; ++x) ASSERT_EQ(zero.at<cv::Vec3b>(y, x), cv::Vec3b(255, 255, 255));
    const cv::Vec3b pos = frame(activation_frame_cell(s, 1, style)).at<cv::Vec3b>(5, 5);
    const cv::Vec3b neg = frame(activation_frame_cell(s, 2, style)).at<cv::Vec3b>(5, 5);
    EXPECT_GT(pos[2], pos[0] + 40) << "positive should be blue-ish (RGB)";
    EXPECT_GT(neg[0], neg[2] + 40) << "negative should be red-ish (RGB)";
    // Shared scale: 1.5 of 3.0 is half-way, visibly lighter than the full colour at 3.0.
    EXPECT_GT(pos[0], 60);
  }
  const cv::Vec3b full = frame(activation_frame_cell(0, 3, style)).at<cv::Vec3b>(5, 5);
  const cv::Vec3b half = frame(activation_frame_cell(0, 1, style)).at<cv::Vec3b>(5, 5);
  EXPECT_LT(full[0], half[0]);
  // The sample images form the header row, above the first channel row.
  const cv::Rect first = activation_frame_cell(0, 0, style);
  EXPECT_EQ(frame.at<cv::Vec3b>(first.y - style.cell / 2 - 6, first.x + style.cell / 2), cv::Vec3b(0, 100, 200));
}

TEST(TrainingMovieFrame, ExplicitScaleAndBadInput) {
  std::vector<std::vector<cv::Mat>> maps(1, {cv::Mat(4, 4, CV_32F, cv::Scalar(1.0f))});
  const cv::Mat saturated = render_activation_frame(sample_images(1), maps, {0}, "x", 0, 1.0f);
  const cv::Mat faint = render_activation_frame(sample_images(1), maps, {0}, "x", 0, 100.0f);
  const cv::Vec3b a = saturated(activation_frame_cell(0, 0)).at<cv::Vec3b>(1, 1);
  const cv::Vec3b b = faint(activation_frame_cell(0, 0)).at<cv::Vec3b>(1, 1);
  EXPECT_LT(a[0], b[0]);
  EXPECT_GE(b[0], 245);
  EXPECT_THROW(render_activation_frame(sample_images(2), maps, {0}, "x", 0), std::exception);
}

TEST(TrainingMovieCurves, RendersWithAndWithoutPoints) {
  std::vector<TrainCurvePoint> curve;
  for (int i = 1; i <= 20; ++i) curve.push_back({i * 10, i / 10.0, 2.3 / i, 0.1 + 0.04 * i});
  const cv::Mat image = render_training_curves(curve, {{100, 1.0, 0.7}, {200, 2.0, 0.85}});
  EXPECT_EQ(image.type(), CV_8UC3);
  EXPECT_GT(image.cols, 400);
  EXPECT_EQ(render_training_curves({}, {}).type(), CV_8UC3);
}

}  // namespace
}  // namespace cnnvis
