// Heatmap overlays (pytorch-grad-cam's show_cam_on_image arithmetic) and contact sheet layout.
#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include "cnnvis/core/errors.h"
#include "cnnvis/io/render.h"

namespace cnnvis {
namespace {

// show_cam_on_image for one pixel before the division by the global maximum.
cv::Vec3f blend(const cv::Vec3b& image, float cam, Colormap map, float alpha) {
  const cv::Vec3b heat = colormap_rgb(map, static_cast<int>(cam * 255.0f) / 255.0f);
  cv::Vec3f out;
  for (int k = 0; k < 3; ++k) out[k] = alpha * (heat[k] / 255.0f) + (1.0f - alpha) * (image[k] / 255.0f);
  return out;
}

int non_white(const cv::Mat& rgb) {
  cv::Mat gray_min;
  cv::Mat planes[3];
  cv::split(rgb, planes);
  cv::min(planes[0], planes[1], gray_min);
  cv::min(gray_min, planes[2], gray_min);
  return cv::countNonZero(gray_min < 250);
}

TEST(OverlayHeatmap, FollowsShowCamOnImage) {
  cv::Mat image(2, 2, CV_8UC3);
  image.at<cv::Vec3b>(0, 0) = cv::Vec3b(10, 200, 30);
  image.at<cv::Vec3b>(0, 1) = cv::Vec3b(0, 0, 0);
  image.at<cv::Vec3b>(1, 0) = cv::Vec3b(255, 255, 255);
  image.at<cv::Vec3b>(1, 1) = cv::Vec3b(90, 90, 90);
  cv::Mat cam(2, 2, CV_32FC1);
  cam.at<float>(0, 0) = 0.3f;
  cam.at<float>(0, 1) = 1.0f;
  cam.at<float>(1, 0) = 0.0f;
  cam.at<float>(1, 1) = 0.77f;

  const cv::Mat out = overlay_heatmap(image, cam, Colormap::jet, 0.4f);
  ASSERT_EQ(out.type(), CV_8UC3);
  ASSERT_EQ(out.size(), image.size());
  float peak = 0;
  for (int y = 0; y < 2; ++y) {
    for (int x = 0; x < 2; ++x) {
      const cv::Vec3f v = blend(image.at<cv::Vec3b>(y, x), cam.at<float>(y, x), Colormap::jet, 0.4f);
      peak = std::max({peak, v[0], v[1], v[2]});
    }
  }
  for (int y = 0; y < 2; ++y) {
    for (int x = 0; x < 2; ++x) {
      const cv::Vec3f v = blend(image.at<cv::Vec3b>(y, x), cam.at<float>(y, x), Colormap::jet, 0.4f);
      for (int k = 0; k < 3; ++k) {
        EXPECT_NEAR(out.at<cv::Vec3b>(y, x)[k], static_cast<int>(255.0f * (v[k] / peak)), 1) << y << "," << x;
      }
    }
  }
  double lo = 0, hi = 0;
  cv::minMaxLoc(out.reshape(1), &lo, &hi);
  EXPECT_EQ(hi, 255.0);
}

TEST(OverlayHeatmap, ResizesTheMapAndPeaksAt255) {
  cv::Mat image(60, 80, CV_8UC3, cv::Scalar(40, 80, 120));
  cv::Mat cam(7, 7, CV_32FC1);
  cv::randu(cam, 0.0f, 1.0f);
  const cv::Mat out = overlay_heatmap(image, cam, Colormap::turbo);
  EXPECT_EQ(out.size(), image.size());
  double lo = 0, hi = 0;
  cv::minMaxLoc(out.reshape(1), &lo, &hi);
  EXPECT_EQ(hi, 255.0);
  // All black with a black heat colour: nothing to rescale, stays black instead of dividing by zero.
  const cv::Mat black = overlay_heatmap(cv::Mat::zeros(4, 4, CV_8UC3), cv::Mat::zeros(4, 4, CV_32FC1), Colormap::gray);
  EXPECT_EQ(cv::countNonZero(black.reshape(1)), 0);
  EXPECT_THROW(overlay_heatmap(image, cv::Mat(), Colormap::jet), UsageError);
}

std::vector<SheetCell> solid_cells(int n, int w, int h, const std::string& caption = "") {
  std::vector<SheetCell> cells;
  for (int i = 0; i < n; ++i) {
    cells.push_back({cv::Mat(h, w, CV_8UC3, cv::Scalar(200, 0, 0)), caption.empty() ? "" : caption + std::to_string(i)});
  }
  return cells;
}

TEST(ContactSheet, GridLayoutWithoutCaptions) {
  const auto cells = solid_cells(5, 20, 10);
  SheetOptions options;
  const cv::Mat sheet = make_contact_sheet(cells, options);
  ASSERT_EQ(sheet.type(), CV_8UC3);
  // ceil(sqrt(5)) = 3 columns, 2 rows, padding 6 around and between cells.
  EXPECT_EQ(sheet.cols, 6 + 3 * (20 + 6));
  EXPECT_EQ(sheet.rows, 6 + 2 * (10 + 6));
  EXPECT_EQ(contact_sheet_cell_rect(cells, options, 0), cv::Rect(6, 6, 20, 10));
  EXPECT_EQ(contact_sheet_cell_rect(cells, options, 4), cv::Rect(32, 22, 20, 10));
  for (std::size_t i = 0; i < cells.size(); ++i) {
    const cv::Rect r = contact_sheet_cell_rect(cells, options, i);
    EXPECT_EQ(sheet.at<cv::Vec3b>(r.y + 5, r.x + 10), cv::Vec3b(200, 0, 0)) << i;
  }
  // Padding, and the unused sixth slot, are white.
  EXPECT_EQ(sheet.at<cv::Vec3b>(0, 0), cv::Vec3b(255, 255, 255));
  EXPECT_EQ(sheet.at<cv::Vec3b>(8, 28), cv::Vec3b(255, 255, 255));
  const cv::Rect sixth = contact_sheet_cell_rect(cells, options, 5);
  EXPECT_EQ(non_white(sheet(sixth)), 0);
}

TEST(ContactSheet, ColumnsCellSizeAndAspect) {
  std::vector<SheetCell> cells;
  cells.push_back({cv::Mat(40, 10, CV_8UC1, cv::Scalar(0)), ""});   // tall, gray
  cells.push_back({cv::Mat(10, 40, CV_8UC3, cv::Scalar(0, 0, 0)), ""});  // wide
  SheetOptions options;
  options.columns = 1;
  options.cell_width = 20;
  options.cell_height = 20;
  options.padding = 2;
  const cv::Mat sheet = make_contact_sheet(cells, options);
  EXPECT_EQ(sheet.size(), cv::Size(2 + 22, 2 + 2 * 22));
  const cv::Rect tall = contact_sheet_cell_rect(cells, options, 0);
  const cv::Rect wide = contact_sheet_cell_rect(cells, options, 1);
  EXPECT_EQ(tall, cv::Rect(2, 2, 20, 20));
  EXPECT_EQ(wide, cv::Rect(2, 24, 20, 20));
  // The tall image becomes 5x20, centred; the wide one 20x5.
  EXPECT_EQ(non_white(sheet(tall)), 5 * 20);
  EXPECT_EQ(non_white(sheet(wide)), 20 * 5);
  EXPECT_EQ(sheet.at<cv::Vec3b>(tall.y + 10, tall.x + 10), cv::Vec3b(0, 0, 0));
  EXPECT_EQ(sheet.at<cv::Vec3b>(tall.y + 10, tall.x + 2), cv::Vec3b(255, 255, 255));
}

TEST(ContactSheet, CaptionsAreDrawnUnderCellsAndTruncated) {
  auto cells = solid_cells(4, 60, 30, "cell ");
  cells[1].caption = "a caption far too long to fit under a sixty pixel wide cell, so it is cut";
  cells[2].caption = "";
  cells[3].caption = "caf\xC3\xA9 \xE2\x9C\x93";  // UTF-8 is drawn as '?' placeholders, one per character
  SheetOptions options;
  options.padding = 6;
  const cv::Mat sheet = make_contact_sheet(cells, options);
  const cv::Rect first = contact_sheet_cell_rect(cells, options, 0);
  const cv::Rect below = contact_sheet_cell_rect(cells, options, 2);
  // A caption strip separates the rows.
  const int caption_h = below.y - (first.y + first.height) - options.padding;
  ASSERT_GT(caption_h, 5);
  EXPECT_EQ(sheet.rows, below.y + below.height + caption_h + options.padding);
  for (std::size_t i = 0; i < cells.size(); ++i) {
    const cv::Rect r = contact_sheet_cell_rect(cells, options, i);
    const cv::Rect strip(r.x, r.y + r.height, r.width, caption_h);
    if (cells[i].caption.empty()) {
      EXPECT_EQ(non_white(sheet(strip)), 0) << i;
    } else {
      EXPECT_GT(non_white(sheet(strip)), 10) << i;
    }
  }
  // The long caption stays inside its cell: the padding columns left and right of it are white.
  const cv::Rect second = contact_sheet_cell_rect(cells, options, 1);
  const cv::Rect gap_left(first.x + first.width, second.y + second.height, options.padding, caption_h);
  const cv::Rect margin_right(second.x + second.width, second.y + second.height, sheet.cols - second.x - second.width,
                              caption_h);
  EXPECT_EQ(non_white(sheet(gap_left)), 0);
  EXPECT_EQ(non_white(sheet(margin_right)), 0);
}

TEST(ContactSheet, TitleAcrossTheTop) {
  const auto cells = solid_cells(2, 50, 50, "x");
  SheetOptions plain;
  SheetOptions titled;
  titled.title = "Grad-CAM for vgg16, layer features.29";
  const cv::Mat without = make_contact_sheet(cells, plain);
  const cv::Mat with = make_contact_sheet(cells, titled);
  const cv::Rect first_plain = contact_sheet_cell_rect(cells, plain, 0);
  const cv::Rect first_titled = contact_sheet_cell_rect(cells, titled, 0);
  EXPECT_EQ(with.cols, without.cols);
  const int title_h = first_titled.y - first_plain.y;
  ASSERT_GT(title_h, 5);
  EXPECT_EQ(with.rows, without.rows + title_h);
  EXPECT_GT(non_white(with(cv::Rect(0, 0, with.cols, first_titled.y))), 20);
}

TEST(ContactSheet, EmptyAndBlankCells) {
  const cv::Mat nothing = make_contact_sheet({});
  EXPECT_FALSE(nothing.empty());
  EXPECT_EQ(non_white(nothing), 0);
  // A cell without an image keeps its place and its caption.
  std::vector<SheetCell> cells = {{cv::Mat(), "missing"}, {cv::Mat(8, 60, CV_8UC3, cv::Scalar(1, 2, 3)), ""}};
  const cv::Mat sheet = make_contact_sheet(cells);
  const cv::Rect blank = contact_sheet_cell_rect(cells, {}, 0);
  EXPECT_EQ(blank.size(), cv::Size(60, 8));
  EXPECT_EQ(non_white(sheet(blank)), 0);
  EXPECT_GT(non_white(sheet), 8 * 60);
}

}  // namespace
}  // namespace cnnvis
