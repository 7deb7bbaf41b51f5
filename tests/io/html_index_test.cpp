// index.html: self-contained, escapes hostile text, references only existing files, groups per target.
#include "cnnvis/io/html_index.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "cnnvis/io/manifest.h"

namespace cnnvis {
namespace {

namespace fs = std::filesystem;

class HtmlIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cnnvis_html_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    for (const char* f : {"dog.input.jpg", "dog.gradcam.c5.overlay.png", "dog.gradcam.c7.overlay.png", "dog.gradcam.c5.npy", "atlas.png"}) {
      std::ofstream(dir_ / f) << "x";
    }
  }
  void TearDown() override { fs::remove_all(dir_); }
  nlohmann::json manifest() const {
    Manifest m(dir_.string(), "gradcam");
    m.header()["model"] = "vgg16";
    m.header()["atlas"] = "atlas.png";
    m.header()["options"] = {{"methods", {"gradcam"}}};
    ManifestEntry e;
    e.input = "photos/<script>alert(1)</script>.jpg";
    e.outputs = {{"input", "dog.input.jpg"},
                 {"gradcam.c5.overlay", "dog.gradcam.c5.overlay.png"},
                 {"gradcam.c7.overlay", "dog.gradcam.c7.overlay.png"},
                 {"gradcam.c5.cam", "dog.gradcam.c5.npy"},
                 {"gone", "deleted.png"}};
    e.predictions = nlohmann::json::array({{{"index", 5}, {"label", "dog & cat"}, {"probability", 0.75}},
                                           {{"index", 7}, {"label", "wolf"}, {"probability", 0.2}}});
    e.extra["maps"] = nlohmann::json::array(
        {{{"tag", "gradcam.c5"}, {"method", "gradcam"}, {"layer", "features.29"}, {"target", {{"label", "dog & cat"}, {"probability", 0.75}}}},
         {{"tag", "gradcam.c7"}, {"method", "gradcam"}, {"layer", "features.29"}, {"target", {{"label", "wolf"}, {"probability", 0.2}}}}});
    m.add(e);
    ManifestEntry bad;
    bad.input = "broken.jpg";
    bad.status = "error";
    bad.error = "broken.jpg: not an image";
    m.add(bad);
    return m.to_json();
  }
  fs::path dir_;
};

TEST_F(HtmlIndexTest, ShowsInputsOverlaysPerTargetPredictionsAndRawLinks) {
  const std::string html = render_index_html(manifest(), dir_.string());
  EXPECT_NE(html.find("src=\"dog.input.jpg\""), std::string::npos);
  EXPECT_NE(html.find("src=\"dog.gradcam.c5.overlay.png\""), std::string::npos);
  EXPECT_NE(html.find("src=\"dog.gradcam.c7.overlay.png\""), std::string::npos);
  EXPECT_NE(html.find("href=\"dog.gradcam.c5.npy\""), std::string::npos);  // raw file linked
  EXPECT_NE(html.find("src=\"atlas.png\""), std::string::npos);          // run-level picture
  EXPECT_NE(html.find("75.0%"), std::string::npos);                       // score
  EXPECT_NE(html.find("dog &amp; cat"), std::string::npos);
  EXPECT_NE(html.find("wolf"), std::string::npos);
  EXPECT_NE(html.find("broken.jpg: not an image"), std::string::npos);
  EXPECT_EQ(html.find("deleted.png"), std::string::npos);  // missing files are never referenced
  EXPECT_EQ(html.find("<script>alert"), std::string::npos);  // input names are escaped
  EXPECT_EQ(html.find("http://"), std::string::npos);         // nothing from the network
  EXPECT_EQ(html.find("https://"), std::string::npos);
}

TEST_F(HtmlIndexTest, EveryReferenceExistsAndOddNamesAreUrlEncoded) {
  std::ofstream(dir_ / "a b#1.png") << "x";
  nlohmann::json m = manifest();
  m["inputs"][1]["outputs"] = {{"overlay", "a b#1.png"}};
  std::ofstream(dir_ / "manifest.json") << m.dump();  // the page links it
  const std::string html = render_index_html(m, dir_.string());
  EXPECT_NE(html.find("src=\"a%20b%231.png\""), std::string::npos);
  const auto refs = html_local_references(html);
  EXPECT_GE(refs.size(), 6u);
  for (const auto& r : refs) EXPECT_TRUE(fs::exists(dir_ / r)) << r;
}

TEST_F(HtmlIndexTest, LargeRunsAreCappedWithANote) {
  nlohmann::json m = manifest();
  for (int i = 0; i < 30; ++i) m["inputs"].push_back({{"input", "x" + std::to_string(i) + ".jpg"}, {"status", "ok"}});
  HtmlIndexOptions o;
  o.max_entries = 10;
  const std::string html = render_index_html(m, dir_.string(), o);
  EXPECT_NE(html.find("22 more input(s)"), std::string::npos);
}

TEST_F(HtmlIndexTest, WriteIndexHtmlReadsTheManifest) {
  std::ofstream(dir_ / "manifest.json") << manifest().dump();
  write_index_html(dir_.string());
  EXPECT_GT(fs::file_size(dir_ / "index.html"), 1000u);
}

}  // namespace
}  // namespace cnnvis
