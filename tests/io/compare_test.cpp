// Golden-run comparison: array metrics, pairing through manifests, statuses, exit codes, report, update.
#include "cnnvis/io/compare.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "cnnvis/core/errors.h"
#include "cnnvis/io/image_io.h"
#include "cnnvis/io/manifest.h"
#include "cnnvis/io/npy.h"

namespace cnnvis {
namespace {

namespace fs = std::filesystem;

TEST(CompareArrays, IdenticalArraysHaveZeroDifferenceAndCorrelationOne) {
  const std::vector<float> a = {0.f, 0.5f, 1.f, 0.25f};
  const ArrayDifference d = compare_arrays(a.data(), a.data(), a.size());
  EXPECT_TRUE(d.identical);
  EXPECT_EQ(d.max_abs, 0.0);
  EXPECT_EQ(d.mean_abs, 0.0);
  EXPECT_DOUBLE_EQ(d.correlation, 1.0);
}

TEST(CompareArrays, DifferencesAreRelativeToTheGoldenMaximum) {
  // golden max |g| = 2e-4 (a raw gradient scale); one value off by 1e-5 -> relative 0.05.
  const std::vector<float> g = {0.f, 1e-4f, -2e-4f, 5e-5f};
  std::vector<float> n = g;
  n[1] += 1e-5f;
  const ArrayDifference d = compare_arrays(g.data(), n.data(), g.size());
  EXPECT_FALSE(d.identical);
  EXPECT_NEAR(d.scale, 2e-4, 1e-9);
  EXPECT_NEAR(d.max_abs, 1e-5, 1e-9);
  EXPECT_NEAR(d.max_rel, 0.05, 1e-4);
  EXPECT_NEAR(d.mean_rel, 0.05 / 4, 1e-4);
  EXPECT_LT(d.correlation, 1.0);
  EXPECT_GT(d.correlation, 0.99);
}

TEST(CompareArrays, PearsonCorrelationOfAnInvertedMapIsMinusOne) {
  const std::vector<float> g = {0.f, 1.f, 2.f, 3.f};
  const std::vector<float> n = {3.f, 2.f, 1.f, 0.f};
  EXPECT_NEAR(compare_arrays(g.data(), n.data(), 4).correlation, -1.0, 1e-12);
}

TEST(CompareArrays, ConstantMapsAndNonFiniteValues) {
  const std::vector<float> zeros = {0.f, 0.f, 0.f};
  const std::vector<float> ramp = {0.f, 0.5f, 1.f};
  EXPECT_DOUBLE_EQ(compare_arrays(zeros.data(), zeros.data(), 3).correlation, 1.0);
  EXPECT_DOUBLE_EQ(compare_arrays(zeros.data(), ramp.data(), 3).correlation, 0.0);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> a = {nan, 1.f, 2.f}, b = {nan, 1.f, 2.f}, c = {0.f, 1.f, 2.f};
  EXPECT_TRUE(compare_arrays(a.data(), b.data(), 3).identical);
  const ArrayDifference d = compare_arrays(a.data(), c.data(), 3);
  EXPECT_FALSE(d.identical);
  EXPECT_EQ(d.nan_mismatches, 1u);
}

class CompareRunsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("cnnvis_compare_test_" + std::to_string(::getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "golden");
    fs::create_directories(root_ / "new");
  }
  void TearDown() override { fs::remove_all(root_); }

  // A run with one input "photos/dog.jpg": a 4x4 map, an 8x8 RGB picture and predictions.
  void write_run(const std::string& which, const cv::Mat& map, const cv::Mat& picture, int top_class = 5,
                 const std::string& input = "photos/dog.jpg") {
    const fs::path dir = root_ / which;
    write_npy((dir / "dog.cam.npy").string(), map);
    write_png((dir / "dog.overlay.png").string(), picture);
    Manifest m(dir.string(), "gradcam");
    ManifestEntry e;
    e.input = input;
    e.extra["key"] = "photos/dog.jpg";
    e.outputs = {{"cam", "dog.cam.npy"}, {"overlay", "dog.overlay.png"}};
    e.predictions = nlohmann::json::array({{{"index", top_class}, {"label", "c"}, {"probability", 0.9}}});
    m.add(e);
    m.write();
  }

  static cv::Mat ramp_map() {
    cv::Mat m(4, 4, CV_32F);
    for (int i = 0; i < 16; ++i) m.at<float>(i / 4, i % 4) = i / 15.0f;
    return m;
  }
  static cv::Mat picture(int value = 100) { return cv::Mat(8, 8, CV_8UC3, cv::Scalar(value, 50, 200)); }

  CompareOptions options() const {
    CompareOptions o;
    o.report_dir = (root_ / "report").string();
    return o;
  }

  fs::path root_;
};

TEST_F(CompareRunsTest, IdenticalRunsPass) {
  write_run("golden", ramp_map(), picture());
  write_run("new", ramp_map(), picture());
  const CompareReport r = compare_runs((root_ / "golden").string(), (root_ / "new").string(), options());
  EXPECT_EQ(r.exit_code(), 0) << compare_summary(r);
  EXPECT_EQ(r.inputs, 1u);
  EXPECT_EQ(r.items.size(), 3u);  // map, image, predictions
  EXPECT_TRUE(fs::exists(root_ / "report" / "report.json"));
  EXPECT_TRUE(fs::exists(root_ / "report" / "report.html"));
}

TEST_F(CompareRunsTest, PairsByKeyEvenWhenInputPathsDiffer) {
  write_run("golden", ramp_map(), picture(), 5, "/home/a/photos/dog.jpg");
  write_run("new", ramp_map(), picture(), 5, "/ci/checkout/photos/dog.jpg");
  EXPECT_EQ(compare_runs((root_ / "golden").string(), (root_ / "new").string(), options()).exit_code(), 0);
}

TEST_F(CompareRunsTest, AChangedMapBeyondToleranceDiffersAndGetsADiffImage) {
  cv::Mat changed = ramp_map();
  changed.at<float>(1, 1) += 0.2f;
  write_run("golden", ramp_map(), picture());
  write_run("new", changed, picture());
  const CompareReport r = compare_runs((root_ / "golden").string(), (root_ / "new").string(), options());
  EXPECT_EQ(r.exit_code(), 1);
  ASSERT_EQ(r.count("differ"), 1u);
  const auto it = std::find_if(r.items.begin(), r.items.end(), [](const CompareItem& i) { return i.status == "differ"; });
  EXPECT_EQ(it->output, "cam");
  EXPECT_NEAR(it->difference.max_rel, 0.2, 1e-6);
  ASSERT_FALSE(it->diff_image.empty());
  EXPECT_TRUE(fs::exists(root_ / "report" / it->diff_image));
  std::ifstream page(root_ / "report" / "report.html");
  const std::string html((std::istreambuf_iterator<char>(page)), std::istreambuf_iterator<char>());
  EXPECT_NE(html.find(it->diff_image), std::string::npos);
  EXPECT_NE(compare_summary(r).find("photos/dog.jpg [cam]"), std::string::npos);
  // Loose tolerances accept the same change.
  CompareOptions loose = options();
  loose.tolerances.max_diff = 0.3;
  loose.tolerances.mean_diff = 0.05;
  loose.tolerances.min_corr = 0.9;
  EXPECT_EQ(compare_runs((root_ / "golden").string(), (root_ / "new").string(), loose).exit_code(), 0);
}

TEST_F(CompareRunsTest, ImagesAllowSmallPixelNoiseButNotVisibleChanges) {
  write_run("golden", ramp_map(), picture(100));
  write_run("new", ramp_map(), picture(101));  // one level everywhere: mean 1/255/3 > default mean 1e-4
  CompareOptions o = options();
  o.tolerances.mean_diff = 0.01;
  EXPECT_EQ(compare_runs((root_ / "golden").string(), (root_ / "new").string(), o).exit_code(), 0);
  write_run("new", ramp_map(), picture(140));
  const CompareReport r = compare_runs((root_ / "golden").string(), (root_ / "new").string(), o);
  EXPECT_EQ(r.exit_code(), 1);
  EXPECT_EQ(r.count("differ"), 1u);
}

TEST_F(CompareRunsTest, ShapeMismatchIsUnusableInputNamedAsSuch) {
  write_run("golden", ramp_map(), picture());
  write_run("new", cv::Mat(2, 8, CV_32F, cv::Scalar(0.5)), picture());
  const CompareReport r = compare_runs((root_ / "golden").string(), (root_ / "new").string(), options());
  EXPECT_EQ(r.exit_code(), 2);
  ASSERT_EQ(r.count("shape_mismatch"), 1u);
  EXPECT_NE(compare_summary(r).find("shape mismatch"), std::string::npos);
  EXPECT_NE(compare_summary(r).find("(4, 4)"), std::string::npos);
  EXPECT_NE(compare_summary(r).find("(2, 8)"), std::string::npos);
}

TEST_F(CompareRunsTest, MissingManifestThrowsInputError) {
  write_run("golden", ramp_map(), picture());
  EXPECT_THROW(compare_runs((root_ / "golden").string(), (root_ / "new").string(), options()), InputError);
  EXPECT_THROW(compare_runs((root_ / "nothing").string(), (root_ / "golden").string(), options()), InputError);
}

TEST_F(CompareRunsTest, MissingAddedOutputsAndChangedPredictionsDiffer) {
  write_run("golden", ramp_map(), picture());
  write_run("new", ramp_map(), picture(), 7);
  fs::remove(root_ / "new" / "dog.overlay.png");
  const CompareReport r = compare_runs((root_ / "golden").string(), (root_ / "new").string(), options());
  EXPECT_EQ(r.exit_code(), 1);
  EXPECT_EQ(r.count("missing"), 1u);  // the overlay file
  EXPECT_EQ(r.count("differ"), 1u);   // top class 5 -> 7
  const std::string summary = compare_summary(r);
  EXPECT_NE(summary.find("top class 5"), std::string::npos) << summary;
}

TEST_F(CompareRunsTest, UpdateMakesGoldenEqualToNewAndDropsStaleFiles) {
  write_run("golden", ramp_map(), picture());
  std::ofstream(root_ / "golden" / "stale.npy") << "x";
  {  // the golden manifest lists a file the new run no longer makes
    nlohmann::json m = read_manifest((root_ / "golden" / "manifest.json").string());
    m["inputs"][0]["outputs"]["old"] = "stale.npy";
    std::ofstream(root_ / "golden" / "manifest.json") << m.dump();
  }
  cv::Mat changed = ramp_map();
  changed = changed * 0.5;
  write_run("new", changed, picture(30));
  EXPECT_EQ(compare_runs((root_ / "golden").string(), (root_ / "new").string(), options()).exit_code(), 1);
  EXPECT_EQ(update_golden((root_ / "golden").string(), (root_ / "new").string()), 2u);
  EXPECT_FALSE(fs::exists(root_ / "golden" / "stale.npy"));
  EXPECT_TRUE(fs::exists(root_ / "golden" / "index.html"));
  EXPECT_EQ(compare_runs((root_ / "golden").string(), (root_ / "new").string(), options()).exit_code(), 0);
}

}  // namespace
}  // namespace cnnvis
