// Canvas generation: PRNG, box placement, item-at-box, determinism, and the written canvas set.
#include "cnnvis/io/canvas.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "cnnvis/core/errors.h"

namespace cnnvis {
namespace {

namespace fs = std::filesystem;

std::vector<std::uint8_t> flat_item(std::uint8_t value) { return std::vector<std::uint8_t>(28 * 28, value); }

// A roughly garment-shaped item: a filled ellipse with a soft edge.
std::vector<std::uint8_t> blob_item() {
  std::vector<std::uint8_t> item(28 * 28, 0);
  for (int y = 0; y < 28; ++y)
    for (int x = 0; x < 28; ++x) {
      const double d = std::hypot((x - 13.5) / 9.0, (y - 13.5) / 12.0);
      item[y * 28 + x] = static_cast<std::uint8_t>(d < 1.0 ? 255 : d < 1.2 ? 128 : 0);
    }
  return item;
}

bool same_bytes(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && a.type() == b.type() && cv::countNonZero(a.reshape(1) != b.reshape(1)) == 0;
}

TEST(CanvasPrngTest, SplitMix64KnownValues) {
  // Reference values of SplitMix64 seeded with 0 (the published test vector).
  SplitMix64 rng(0);
  EXPECT_EQ(rng.next(), 0xE220A8397B1DCDAFULL);
  EXPECT_EQ(rng.next(), 0x6E789E6AA1B965F4ULL);
  EXPECT_EQ(rng.next(), 0x06C45D188009454FULL);
}

TEST(CanvasPrngTest, UniformAndIntRangesAndMoments) {
  SplitMix64 rng(42);
  double sum = 0, sum_sq = 0;
  std::vector<int> hist(7, 0);
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const double u = rng.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    const int k = rng.uniform_int(-3, 3);
    ASSERT_GE(k, -3);
    ASSERT_LE(k, 3);
    ++hist[k + 3];
    const double z = rng.normal();
    ASSERT_TRUE(std::isfinite(z));
    sum += z;
    sum_sq += z * z;
  }
  for (int c : hist) EXPECT_NEAR(c, n / 7.0, n / 7.0 * 0.05);
  EXPECT_NEAR(sum / n, 0.0, 0.01);
  EXPECT_NEAR(sum_sq / n, 1.0, 0.02);
  EXPECT_EQ(rng.uniform_int(5, 5), 5);
  EXPECT_THROW(rng.uniform_int(2, 1), UsageError);
  // Full int range must not overflow.
  for (int i = 0; i < 100; ++i) rng.uniform_int(INT32_MIN, INT32_MAX);
}

TEST(CanvasTest, BoxInsideCanvasForManySeedsAndSizes) {
  const auto item = blob_item();
  for (int size : {64, 96}) {
    for (int item_size : {28, 40}) {
      CanvasOptions options;
      options.size = size;
      options.item_size = item_size;
      std::set<int> xs, ys;
      for (std::uint64_t seed = 0; seed < 300; ++seed) {
        const Canvas c = make_canvas(item.data(), 4, 11, seed, options);
        ASSERT_EQ(c.rgb.type(), CV_8UC3);
        ASSERT_EQ(c.rgb.rows, size);
        ASSERT_EQ(c.rgb.cols, size);
        EXPECT_EQ(c.box.width, item_size);
        EXPECT_EQ(c.box.height, item_size);
        EXPECT_GE(c.box.x, 0);
        EXPECT_GE(c.box.y, 0);
        EXPECT_LE(c.box.x + c.box.width, size);
        EXPECT_LE(c.box.y + c.box.height, size);
        EXPECT_EQ(c.label, 4);
        EXPECT_EQ(c.source_index, 11);
        xs.insert(c.box.x);
        ys.insert(c.box.y);
      }
      // Positions are spread over the whole range, corners included eventually.
      EXPECT_GT(xs.size(), static_cast<std::size_t>((size - item_size) / 2));
      EXPECT_GT(ys.size(), static_cast<std::size_t>((size - item_size) / 2));
    }
  }
}

TEST(CanvasTest, ItemFillsTheBoxWithItsTint) {
  // A flat full-intensity item without noise: the box is one solid bright colour and the canvas right
  // outside it is something else.
  const auto item = flat_item(255);
  CanvasOptions options;
  options.noise_sd = 0.0f;
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    const Canvas c = make_canvas(item.data(), 0, 0, seed, options);
    const cv::Mat inside = c.rgb(c.box);
    const cv::Vec3b tint = inside.at<cv::Vec3b>(0, 0);
    for (int y = 0; y < inside.rows; ++y)
      for (int x = 0; x < inside.cols; ++x) ASSERT_EQ(inside.at<cv::Vec3b>(y, x), tint) << "seed " << seed;
    EXPECT_GE(std::max({tint[0], tint[1], tint[2]}), 0.85 * 255 - 1) << "tint should be bright";

    // Outside the box, few pixels coincide with the tint.
    cv::Mat mask(c.rgb.size(), CV_8UC1, cv::Scalar(255));
    mask(c.box).setTo(0);
    int equal = 0, outside = 0;
    for (int y = 0; y < c.rgb.rows; ++y)
      for (int x = 0; x < c.rgb.cols; ++x) {
        if (!mask.at<std::uint8_t>(y, x)) continue;
        ++outside;
        const cv::Vec3b p = c.rgb.at<cv::Vec3b>(y, x);
        equal += std::abs(p[0] - tint[0]) + std::abs(p[1] - tint[1]) + std::abs(p[2] - tint[2]) < 12;
      }
    EXPECT_LT(equal, outside / 10) << "seed " << seed;
  }
}

TEST(CanvasTest, DarkDetailInsideTheItemIsShadedNotSeeThrough) {
  // A bright square with a one-pixel black seam and a wide black gap: the seam is part of the garment
  // (drawn as the tint at its darkest shade, 0.35), the wide gap lets the background through, exactly as
  // with a blank item.
  std::vector<std::uint8_t> item(28 * 28, 0);
  for (int y = 4; y < 24; ++y)
    for (int x = 2; x < 26; ++x) item[y * 28 + x] = (x == 8 || (x >= 14 && x <= 19)) ? 0 : 255;
  const auto blank = flat_item(0);
  CanvasOptions options;
  options.noise_sd = 0.0f;
  for (std::uint64_t seed : {5ULL, 6ULL, 7ULL}) {
    const Canvas c = make_canvas(item.data(), 0, 0, seed, options);
    const Canvas bare = make_canvas(blank.data(), 0, 0, seed, options);
    const cv::Point o = c.box.tl();
    const cv::Vec3b full = c.rgb.at<cv::Vec3b>(o + cv::Point(4, 12));
    const cv::Vec3b seam = c.rgb.at<cv::Vec3b>(o + cv::Point(8, 12));
    for (int ch = 0; ch < 3; ++ch) EXPECT_NEAR(seam[ch], 0.35 * full[ch], 1.5) << "seed " << seed << " channel " << ch;
    EXPECT_EQ(c.rgb.at<cv::Vec3b>(o + cv::Point(16, 12)), bare.rgb.at<cv::Vec3b>(o + cv::Point(16, 12)))
        << "the middle of a 6-pixel gap shows the background";
  }
}

TEST(CanvasTest, ItemChangesOnlyPixelsInsideTheBox) {
  // The same seed with a blank item gives the bare background (same clutter, same noise): every pixel
  // the real item changed lies in the box.
  const auto item = blob_item();
  const auto blank = flat_item(0);
  for (int size : {64, 96}) {
    CanvasOptions options;
    options.size = size;
    options.item_size = size == 96 ? 56 : 28;
    for (std::uint64_t seed : {3ULL, 77ULL, 123456789ULL}) {
      const Canvas with = make_canvas(item.data(), 1, 0, seed, options);
      const Canvas without = make_canvas(blank.data(), 1, 0, seed, options);
      ASSERT_EQ(with.box, without.box);
      cv::Mat diff;
      cv::absdiff(with.rgb, without.rgb, diff);
      cv::Mat changed;
      cv::cvtColor(diff, changed, cv::COLOR_RGB2GRAY);
      changed = changed > 0;
      const int total_changed = cv::countNonZero(changed);
      const int changed_in_box = cv::countNonZero(changed(with.box));
      EXPECT_EQ(total_changed, changed_in_box) << "pixels changed outside the box";
      // The item covers a good share of its box.
      EXPECT_GT(changed_in_box, with.box.area() / 3);
    }
  }
}

TEST(CanvasTest, Deterministic) {
  const auto item = blob_item();
  CanvasOptions options;
  options.size = 96;
  const Canvas a = make_canvas(item.data(), 2, 5, 99, options);
  const Canvas b = make_canvas(item.data(), 2, 5, 99, options);
  EXPECT_TRUE(same_bytes(a.rgb, b.rgb));
  EXPECT_EQ(a.box, b.box);
  const Canvas c = make_canvas(item.data(), 2, 5, 100, options);
  EXPECT_FALSE(same_bytes(a.rgb, c.rgb));
  // Noise-free and clutter-free canvases are deterministic too and still differ by seed.
  options.noise_sd = 0;
  options.clutter_strokes = 0;
  EXPECT_TRUE(same_bytes(make_canvas(item.data(), 0, 0, 7, options).rgb, make_canvas(item.data(), 0, 0, 7, options).rgb));
  EXPECT_FALSE(same_bytes(make_canvas(item.data(), 0, 0, 7, options).rgb, make_canvas(item.data(), 0, 0, 8, options).rgb));
}

FashionMnistSplit small_split(int n);

TEST(CanvasTest, WindowIsTheCropOfTheWholeCanvas) {
  // make_canvas_window skips the noise outside the window; its pixels must still be the whole canvas's.
  const auto item = blob_item();
  for (int size : {64, 96}) {
    CanvasOptions options;
    options.size = size;
    for (std::uint64_t seed : {1ULL, 42ULL, 987654321ULL}) {
      const Canvas whole = make_canvas(item.data(), 4, 9, seed, options);
      for (int side : {29, 32, 40, 56, size}) {
        for (int corner = 0; corner < 3; ++corner) {
          cv::Rect seen;
          const CanvasWindow window = [&](const cv::Rect& box) {
            seen = box;
            const int x = corner == 0 ? 0 : corner == 1 ? size - side : std::clamp(box.x, 0, size - side);
            const int y = corner == 0 ? size - side : corner == 1 ? 0 : std::clamp(box.y, 0, size - side);
            return cv::Rect(x, y, side, side);
          };
          const Canvas part = make_canvas_window(item.data(), 4, 9, seed, options, window);
          EXPECT_EQ(seen, whole.box);
          EXPECT_EQ(part.box, whole.box);
          EXPECT_EQ(part.label, 4);
          ASSERT_EQ(part.rgb.size(), cv::Size(side, side));
          const cv::Rect r = window(whole.box);
          EXPECT_TRUE(same_bytes(part.rgb, whole.rgb(r).clone())) << "size " << size << " seed " << seed << " side " << side;
        }
      }
    }
  }
  CanvasOptions options;
  EXPECT_THROW(make_canvas_window(item.data(), 0, 0, 1, options, [](const cv::Rect&) { return cv::Rect(40, 0, 32, 32); }),
               UsageError);
  EXPECT_THROW(make_canvas_window(item.data(), 0, 0, 1, options, CanvasWindow()), UsageError);
  // From a split: the same seed mixing as make_canvas_from_split.
  const FashionMnistSplit split = small_split(4);
  const CanvasWindow left = [](const cv::Rect&) { return cv::Rect(0, 0, 40, 40); };
  EXPECT_TRUE(same_bytes(make_canvas_window_from_split(split, 3, 77, options, left).rgb,
                         make_canvas_from_split(split, 3, 77, options).rgb(cv::Rect(0, 0, 40, 40)).clone()));
}

TEST(CanvasTest, LooksLikeACanvas) {
  // Sanity of the design: the background varies (gradient + clutter + noise), and noise has about the
  // requested spread (measured as the difference between two noise levels on the same seed).
  const auto blank = flat_item(0);
  CanvasOptions options;
  const Canvas c = make_canvas(blank.data(), 0, 0, 5, options);
  cv::Scalar mean, sd;
  cv::meanStdDev(c.rgb.reshape(1), mean, sd);
  EXPECT_GT(sd[0], 10.0);
  options.noise_sd = 0;
  const Canvas clean = make_canvas(blank.data(), 0, 0, 5, options);
  cv::Mat a, b;
  c.rgb.convertTo(a, CV_32F);
  clean.rgb.convertTo(b, CV_32F);
  const cv::Mat noise = a - b;
  cv::meanStdDev(noise.reshape(1), mean, sd);
  EXPECT_NEAR(mean[0], 0.0, 2.0);
  EXPECT_NEAR(sd[0], 0.06 * 255, 2.5);
}

TEST(CanvasTest, RejectsBadOptions) {
  const auto item = blob_item();
  CanvasOptions options;
  options.item_size = 65;
  EXPECT_THROW(make_canvas(item.data(), 0, 0, 1, options), UsageError);
  options = {};
  options.size = 0;
  EXPECT_THROW(make_canvas(item.data(), 0, 0, 1, options), UsageError);
  options = {};
  options.noise_sd = -1;
  EXPECT_THROW(make_canvas(item.data(), 0, 0, 1, options), UsageError);
  EXPECT_THROW(make_canvas(nullptr, 0, 0, 1, {}), UsageError);
  // The item may fill the whole canvas.
  options = {};
  options.size = 28;
  EXPECT_EQ(make_canvas(item.data(), 0, 0, 1, options).box, cv::Rect(0, 0, 28, 28));
}

FashionMnistSplit small_split(int n) {
  FashionMnistSplit split;
  split.images.dims = {n, 28, 28};
  split.labels.dims = {n};
  for (int i = 0; i < n; ++i) {
    const auto item = i % 2 ? blob_item() : flat_item(static_cast<std::uint8_t>(100 + i));
    split.images.values.insert(split.images.values.end(), item.begin(), item.end());
    split.labels.values.push_back(static_cast<std::uint8_t>(i % 10));
  }
  return split;
}

TEST(CanvasTest, FromSplitMixesSeedPerIndex) {
  const FashionMnistSplit split = small_split(6);
  const Canvas c3 = make_canvas_from_split(split, 3, 1234);
  EXPECT_EQ(c3.label, 3);
  EXPECT_EQ(c3.source_index, 3);
  EXPECT_TRUE(same_bytes(c3.rgb, make_canvas_from_split(split, 3, 1234).rgb));
  EXPECT_FALSE(same_bytes(c3.rgb, make_canvas_from_split(split, 3, 1235).rgb));
  // Canvas i is not a plain shifted seed of canvas i-1: items 1 and 3 are the same picture, yet their
  // canvases differ for every base seed we try.
  for (std::uint64_t base = 0; base < 5; ++base)
    EXPECT_FALSE(same_bytes(make_canvas_from_split(split, 1, base).rgb, make_canvas_from_split(split, 3, base).rgb));
  EXPECT_THROW(make_canvas_from_split(split, 6, 0), UsageError);
  EXPECT_THROW(make_canvas_from_split(split, -1, 0), UsageError);
}

TEST(CanvasTest, WritesCanvasSet) {
  const fs::path dir = fs::temp_directory_path() / ("cnnvis_canvas_test_" + std::to_string(::getpid())) / "set";
  fs::remove_all(dir.parent_path());
  const FashionMnistSplit split = small_split(3);
  std::vector<Canvas> canvases;
  for (int i = 0; i < 3; ++i) canvases.push_back(make_canvas_from_split(split, i, 42));
  std::vector<std::string> names = fashion_mnist_class_names();
  write_canvas_set(dir.string(), canvases, names);

  std::ifstream in(dir / "canvases.json");
  ASSERT_TRUE(in.good());
  const nlohmann::json doc = nlohmann::json::parse(in);
  EXPECT_EQ(doc.at("size"), 64);
  EXPECT_EQ(doc.at("classes").size(), 10u);
  ASSERT_EQ(doc.at("items").size(), 3u);
  for (int i = 0; i < 3; ++i) {
    const auto& entry = doc["items"][i];
    char expected_name[32];
    std::snprintf(expected_name, sizeof(expected_name), "canvas_%05d.png", i);
    EXPECT_EQ(entry.at("file"), expected_name);
    EXPECT_EQ(entry.at("label"), canvases[i].label);
    EXPECT_EQ(entry.at("class"), names[canvases[i].label]);
    EXPECT_EQ(entry.at("source_index"), i);
    const auto box = entry.at("box").get<std::vector<int>>();
    EXPECT_EQ(box, (std::vector<int>{canvases[i].box.x, canvases[i].box.y, canvases[i].box.width,
                                     canvases[i].box.height}));
    // PNG round trip: the file holds the canvas in BGR order, i.e. the same RGB image.
    const cv::Mat bgr = cv::imread((dir / expected_name).string(), cv::IMREAD_COLOR);
    ASSERT_FALSE(bgr.empty());
    cv::Mat rgb;
    cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
    EXPECT_TRUE(same_bytes(rgb, canvases[i].rgb));
  }

  // Labels without names get "class N"; an unwritable place is an OutputError.
  canvases[0].label = 17;
  write_canvas_set(dir.string(), canvases, names, "x_");
  std::ifstream in2(dir / "canvases.json");
  EXPECT_EQ(nlohmann::json::parse(in2)["items"][0]["class"], "class 17");
  EXPECT_TRUE(fs::exists(dir / "x_00002.png"));
  std::ofstream(dir / "a_file") << "x";
  EXPECT_THROW(write_canvas_set((dir / "a_file" / "sub").string(), canvases, names), OutputError);
  fs::remove_all(dir.parent_path());
}

}  // namespace
}  // namespace cnnvis
