// Colormap values at known points and agreement with OpenCV's own maps.
#include <cmath>
#include <string>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "cnnvis/core/errors.h"
#include "cnnvis/io/colormap.h"

namespace cnnvis {
namespace {

cv::Vec3b opencv_rgb(int cv_map, int index) {
  cv::Mat gray(1, 1, CV_8UC1, cv::Scalar(index));
  cv::Mat bgr;
  cv::applyColorMap(gray, bgr, cv_map);
  const cv::Vec3b c = bgr.at<cv::Vec3b>(0, 0);
  return cv::Vec3b(c[2], c[1], c[0]);
}

TEST(Colormap, NamesRoundTrip) {
  const auto names = colormap_names();
  ASSERT_EQ(names.size(), 6u);
  for (const auto& name : names) EXPECT_EQ(colormap_name(parse_colormap(name)), name);
  EXPECT_EQ(parse_colormap("jet"), Colormap::jet);
  EXPECT_EQ(parse_colormap("diverging"), Colormap::diverging);
  try {
    parse_colormap("rainbow");
    FAIL() << "no error";
  } catch (const UsageError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("rainbow"), std::string::npos);
    EXPECT_NE(message.find("jet, turbo, viridis, inferno, gray, diverging"), std::string::npos);
  }
}

TEST(Colormap, OpenCvMapsMatchOpenCvInRgbOrder) {
  const std::pair<Colormap, int> maps[] = {{Colormap::jet, cv::COLORMAP_JET},
                                           {Colormap::turbo, cv::COLORMAP_TURBO},
                                           {Colormap::viridis, cv::COLORMAP_VIRIDIS},
                                           {Colormap::inferno, cv::COLORMAP_INFERNO}};
  for (const auto& [map, cv_map] : maps) {
    for (int i : {0, 1, 64, 127, 128, 200, 255}) {
      EXPECT_EQ(colormap_rgb(map, i / 255.0f), opencv_rgb(cv_map, i)) << colormap_name(map) << " at " << i;
    }
  }
  // Jet starts dark blue and ends dark red (in RGB order).
  EXPECT_GT(colormap_rgb(Colormap::jet, 0.0f)[2], 100);
  EXPECT_EQ(colormap_rgb(Colormap::jet, 0.0f)[0], 0);
  EXPECT_GT(colormap_rgb(Colormap::jet, 1.0f)[0], 100);
  EXPECT_EQ(colormap_rgb(Colormap::jet, 1.0f)[2], 0);
}

TEST(Colormap, GrayAndClamping) {
  EXPECT_EQ(colormap_rgb(Colormap::gray, 1.0f), cv::Vec3b(255, 255, 255));
  EXPECT_EQ(colormap_rgb(Colormap::gray, 0.0f), cv::Vec3b(0, 0, 0));
  EXPECT_EQ(colormap_rgb(Colormap::gray, 0.5f), cv::Vec3b(128, 128, 128));  // round(127.5), ties to even
  EXPECT_EQ(colormap_rgb(Colormap::gray, 0.2f), cv::Vec3b(51, 51, 51));
  EXPECT_EQ(colormap_rgb(Colormap::gray, 7.0f), cv::Vec3b(255, 255, 255));
  EXPECT_EQ(colormap_rgb(Colormap::gray, -3.0f), cv::Vec3b(0, 0, 0));
  EXPECT_EQ(colormap_rgb(Colormap::gray, std::nanf("")), cv::Vec3b(0, 0, 0));
  EXPECT_EQ(colormap_rgb(Colormap::jet, std::nanf("")), colormap_rgb(Colormap::jet, 0.0f));
}

TEST(Colormap, DivergingIsRedWhiteBlue) {
  EXPECT_EQ(colormap_rgb(Colormap::diverging, 0.5f), cv::Vec3b(255, 255, 255));
  const cv::Vec3b low = colormap_rgb(Colormap::diverging, 0.0f);
  const cv::Vec3b high = colormap_rgb(Colormap::diverging, 1.0f);
  EXPECT_GT(low[0], 150);
  EXPECT_LT(low[2], 80);
  EXPECT_GT(high[2], 150);
  EXPECT_LT(high[0], 80);
  // Lightness falls monotonically away from the middle on both sides.
  int previous = 3 * 255;
  for (int i = 128; i <= 255; ++i) {
    const cv::Vec3b c = colormap_rgb(Colormap::diverging, i / 255.0f);
    const int sum = c[0] + c[1] + c[2];
    EXPECT_LE(sum, previous) << i;
    previous = sum;
  }
  previous = 3 * 255;
  for (int i = 128; i >= 0; --i) {
    const cv::Vec3b c = colormap_rgb(Colormap::diverging, i / 255.0f);
    const int sum = c[0] + c[1] + c[2];
    EXPECT_LE(sum, previous) << i;
    previous = sum;
  }
}

TEST(Colormap, ApplyColormapMatchesPointwise) {
  cv::Mat map(3, 4, CV_32FC1);
  const float values[12] = {0.0f, 0.1f, 0.25f, 0.5f, 0.75f, 1.0f, -1.0f, 2.0f, std::nanf(""), 0.999f, 0.001f, 0.6f};
  for (int i = 0; i < 12; ++i) map.at<float>(i / 4, i % 4) = values[i];
  for (Colormap cm : {Colormap::jet, Colormap::turbo, Colormap::viridis, Colormap::inferno, Colormap::gray,
                      Colormap::diverging}) {
    const cv::Mat rgb = apply_colormap(map, cm);
    ASSERT_EQ(rgb.type(), CV_8UC3);
    ASSERT_EQ(rgb.size(), map.size());
    for (int i = 0; i < 12; ++i) {
      EXPECT_EQ(rgb.at<cv::Vec3b>(i / 4, i % 4), colormap_rgb(cm, values[i])) << colormap_name(cm) << " " << i;
    }
  }
  // Jet over a whole ramp equals cv::applyColorMap of the same ramp quantised to 8 bits.
  cv::Mat ramp(1, 256, CV_32FC1);
  cv::Mat ramp8(1, 256, CV_8UC1);
  for (int i = 0; i < 256; ++i) {
    ramp.at<float>(0, i) = i / 255.0f;
    ramp8.at<std::uint8_t>(0, i) = static_cast<std::uint8_t>(i);
  }
  cv::Mat bgr, expected;
  cv::applyColorMap(ramp8, bgr, cv::COLORMAP_JET);
  cv::cvtColor(bgr, expected, cv::COLOR_BGR2RGB);
  EXPECT_EQ(cv::norm(apply_colormap(ramp, Colormap::jet), expected, cv::NORM_INF), 0);
  EXPECT_THROW(apply_colormap(cv::Mat(2, 2, CV_32FC3), Colormap::jet), UsageError);
}

TEST(Colormap, DivergingSignedMaps) {
  cv::Mat map(1, 5, CV_32FC1);
  map.at<float>(0, 0) = -4.0f;
  map.at<float>(0, 1) = 0.0f;
  map.at<float>(0, 2) = 4.0f;
  map.at<float>(0, 3) = 2.0f;
  map.at<float>(0, 4) = std::nanf("");
  cv::Mat rgb = apply_diverging(map);
  EXPECT_EQ(rgb.at<cv::Vec3b>(0, 0), colormap_rgb(Colormap::diverging, 0.0f));
  EXPECT_EQ(rgb.at<cv::Vec3b>(0, 1), cv::Vec3b(255, 255, 255));
  EXPECT_EQ(rgb.at<cv::Vec3b>(0, 2), colormap_rgb(Colormap::diverging, 1.0f));
  EXPECT_EQ(rgb.at<cv::Vec3b>(0, 3), colormap_rgb(Colormap::diverging, 0.75f));
  EXPECT_EQ(rgb.at<cv::Vec3b>(0, 4), cv::Vec3b(255, 255, 255));
  // An explicit scale: 2 is now the top of the range and 4 is clamped.
  rgb = apply_diverging(map, 2.0f);
  EXPECT_EQ(rgb.at<cv::Vec3b>(0, 3), colormap_rgb(Colormap::diverging, 1.0f));
  EXPECT_EQ(rgb.at<cv::Vec3b>(0, 2), colormap_rgb(Colormap::diverging, 1.0f));
  // All zeros render white.
  const cv::Mat zeros = apply_diverging(cv::Mat::zeros(3, 3, CV_32FC1));
  EXPECT_EQ(cv::countNonZero(zeros.reshape(1) != 255), 0);
}

}  // namespace
}  // namespace cnnvis
