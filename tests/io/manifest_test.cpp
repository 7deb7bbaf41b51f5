// Manifest JSON layout and atomic writing, output directory checks, and output names for hostile inputs.
#include "cnnvis/io/manifest.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <string>

#include "cnnvis/core/errors.h"

namespace cnnvis {
namespace {

namespace fs = std::filesystem;

class ManifestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cnnvis_manifest_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(dir_, ec);
  }
  fs::path dir_;
};

Manifest sample_manifest(const std::string& out_dir) {
  Manifest m(out_dir, "gradcam");
  m.header()["version"] = "0.1.0";
  m.header()["model"] = "vgg16";
  m.header()["device"] = "cpu";
  m.header()["arguments"] = {"cnnvis", "gradcam", "img/dog.jpg"};
  m.header()["options"] = {{"layer", "features.29"}};

  ManifestEntry ok;
  ok.input = "img/dog.jpg";
  ok.outputs = {{"heatmap", "dog.gradcam.png"}, {"overlay", "dog.overlay.png"}};
  ok.predictions = nlohmann::json::array({{{"index", 5}, {"label", "dog"}, {"score", 3.2}, {"probability", 0.91}}});
  ok.timings_ms = {{"load", 3.1}, {"compute", 40.2}};
  ok.extra = {{"target_class", 5}, {"status", "should not override"}};
  m.add(ok);

  ManifestEntry bad;
  bad.input = "img/broken.jpg";
  bad.status = "error";
  bad.error = "img/broken.jpg: not an image";
  m.add(bad);
  return m;
}

TEST_F(ManifestTest, JsonStructure) {
  const Manifest m = sample_manifest(dir_.string());
  EXPECT_EQ(m.entries().size(), 2u);
  EXPECT_EQ(m.error_count(), 1u);
  EXPECT_EQ(m.out_dir(), dir_.string());
  const nlohmann::json j = m.to_json();
  EXPECT_EQ(j["tool"], "cnnvis");
  EXPECT_EQ(j["version"], "0.1.0");
  EXPECT_EQ(j["command"], "gradcam");
  EXPECT_EQ(j["model"], "vgg16");
  EXPECT_EQ(j["options"]["layer"], "features.29");
  const std::regex iso(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)");
  EXPECT_TRUE(std::regex_match(j["started"].get<std::string>(), iso)) << j["started"];
  EXPECT_TRUE(std::regex_match(j["finished"].get<std::string>(), iso)) << j["finished"];
  EXPECT_EQ(j["summary"], nlohmann::json({{"inputs", 2}, {"ok", 1}, {"error", 1}}));

  ASSERT_TRUE(j["inputs"].is_array());
  ASSERT_EQ(j["inputs"].size(), 2u);
  const auto& first = j["inputs"][0];
  EXPECT_EQ(first["input"], "img/dog.jpg");
  EXPECT_EQ(first["status"], "ok");
  EXPECT_TRUE(first["error"].is_null());
  EXPECT_EQ(first["outputs"], nlohmann::json({{"heatmap", "dog.gradcam.png"}, {"overlay", "dog.overlay.png"}}));
  EXPECT_EQ(first["predictions"][0]["label"], "dog");
  EXPECT_DOUBLE_EQ(first["timings_ms"]["compute"].get<double>(), 40.2);
  EXPECT_EQ(first["target_class"], 5);  // extra fields merged
  const auto& second = j["inputs"][1];
  EXPECT_EQ(second["status"], "error");
  EXPECT_EQ(second["error"], "img/broken.jpg: not an image");
  EXPECT_TRUE(second["outputs"].is_object() && second["outputs"].empty());
  EXPECT_TRUE(second["predictions"].is_array() && second["predictions"].empty());
}

TEST_F(ManifestTest, WriteIsAtomicAndReadable) {
  const Manifest m = sample_manifest(dir_.string());
  // A stale temporary file from a crashed run is simply replaced.
  std::ofstream(dir_ / "manifest.json.tmp") << "garbage";
  m.write();
  EXPECT_TRUE(fs::exists(dir_ / "manifest.json"));
  EXPECT_FALSE(fs::exists(dir_ / "manifest.json.tmp"));
  const nlohmann::json back = read_manifest((dir_ / "manifest.json").string());
  EXPECT_EQ(back["command"], "gradcam");
  EXPECT_EQ(back["inputs"].size(), 2u);
  EXPECT_EQ(back["summary"]["error"], 1);
  // Rewriting replaces the file as a whole.
  Manifest empty(dir_.string(), "predict");
  empty.write();
  const nlohmann::json again = read_manifest((dir_ / "manifest.json").string());
  EXPECT_EQ(again["command"], "predict");
  EXPECT_TRUE(again["inputs"].empty());
  EXPECT_EQ(again["summary"]["inputs"], 0);
}

TEST_F(ManifestTest, InvalidUtf8InputNamesStillWrite) {
  Manifest m(dir_.string(), "predict");
  ManifestEntry e;
  e.input = "img/\xff\xfe.jpg";  // Linux file names are bytes, not necessarily UTF-8
  m.add(e);
  ASSERT_NO_THROW(m.write());
  const nlohmann::json back = read_manifest((dir_ / "manifest.json").string());
  EXPECT_EQ(back["inputs"][0]["input"], "img/\xEF\xBF\xBD\xEF\xBF\xBD.jpg");
}

TEST_F(ManifestTest, WriteIntoMissingDirectoryThrowsOutputError) {
  const Manifest m(((dir_ / "gone").string()), "predict");
  try {
    m.write();
    FAIL() << "expected OutputError";
  } catch (const OutputError& e) {
    const std::string expected = (dir_ / "gone" / "manifest.json").string() + ": cannot write";
    EXPECT_EQ(std::string(e.what()).rfind(expected, 0), 0u) << e.what();
  }
}

TEST_F(ManifestTest, ReadManifestErrors) {
  const std::string missing = (dir_ / "none.json").string();
  EXPECT_THROW(read_manifest(missing), InputError);
  const std::string bad = (dir_ / "bad.json").string();
  std::ofstream(bad) << "{\"inputs\": [";
  try {
    read_manifest(bad);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(bad + ": not valid JSON", 0), 0u) << e.what();
  }
  const std::string other = (dir_ / "other.json").string();
  std::ofstream(other) << "[1, 2]";
  EXPECT_THROW(read_manifest(other), InputError);
  EXPECT_THROW(read_manifest(dir_.string()), InputError);
}

TEST_F(ManifestTest, EnsureOutputDirCreatesParentsAndLeavesNoProbe) {
  const fs::path out = dir_ / "a" / "b" / "c";
  ensure_output_dir(out.string());
  EXPECT_TRUE(fs::is_directory(out));
  EXPECT_TRUE(fs::is_empty(out));
  ensure_output_dir(out.string());  // existing directory is fine
  EXPECT_TRUE(fs::is_empty(out));
}

TEST_F(ManifestTest, EnsureOutputDirOverAFileFails) {
  const fs::path file = dir_ / "plain";
  std::ofstream(file) << "x";
  try {
    ensure_output_dir(file.string());
    FAIL() << "expected OutputError";
  } catch (const OutputError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(file.string() + ": cannot create output directory (", 0), 0u) << e.what();
  }
  try {
    ensure_output_dir((file / "sub").string());
    FAIL() << "expected OutputError";
  } catch (const OutputError& e) {
    EXPECT_EQ(std::string(e.what()).rfind((file / "sub").string() + ": cannot create output directory (", 0), 0u)
        << e.what();
  }
}

TEST_F(ManifestTest, EnsureOutputDirNotWritable) {
  if (::geteuid() == 0) GTEST_SKIP() << "root ignores directory permissions";
  const fs::path ro = dir_ / "ro";
  fs::create_directories(ro);
  fs::permissions(ro, fs::perms::owner_read | fs::perms::owner_exec);
  try {
    ensure_output_dir(ro.string());
    FAIL() << "expected OutputError";
  } catch (const OutputError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(ro.string() + ": output directory is not writable", 0), 0u) << e.what();
  }
}

TEST_F(ManifestTest, EnsureOutputDirOnReadOnlyFileSystem) {
  // /proc is read-only for everyone, root included.
  if (!fs::is_directory("/proc/self")) GTEST_SKIP() << "no /proc";
  try {
    ensure_output_dir("/proc/self");
    FAIL() << "expected OutputError";
  } catch (const OutputError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("/proc/self: output directory is not writable", 0), 0u) << e.what();
  }
}

TEST(OutputNamer, UsesTheFileNameWithoutExtension) {
  OutputNamer n;
  EXPECT_EQ(n.stem_for("img/dog.jpg"), "dog");
  EXPECT_EQ(n.stem_for("cat.PNG"), "cat");
  EXPECT_EQ(n.stem_for("archive.tar.gz"), "archive.tar");
  EXPECT_EQ(n.stem_for("my photo (1).jpg"), "my_photo__1_");
}

TEST(OutputNamer, HostileNamesStayInsideTheOutputDirectory) {
  OutputNamer n;
  std::set<std::string> seen;
  for (const char* input : {"../../x.jpg", "a/b/c.png", "a/b/c.png", "", "..", ".", "/", "../../etc/passwd",
                            "x/../../..", "a\\..\\..\\evil.png", "-"}) {
    const std::string stem = n.stem_for(input);
    EXPECT_FALSE(stem.empty()) << input;
    EXPECT_NE(stem, ".") << input;
    EXPECT_NE(stem, "..") << input;
    EXPECT_EQ(stem.find('/'), std::string::npos) << input << " -> " << stem;
    EXPECT_EQ(stem.find('\\'), std::string::npos) << input << " -> " << stem;
    EXPECT_TRUE(seen.insert(stem).second) << "stem handed out twice: " << stem;
    // The joined path never leaves the directory.
    const fs::path joined = (fs::path("/out") / (stem + ".png")).lexically_normal();
    EXPECT_EQ(joined.parent_path(), fs::path("/out")) << stem;
  }
}

TEST(OutputNamer, ExactStemsForHostileNames) {
  OutputNamer n;
  EXPECT_EQ(n.stem_for("../../x.jpg"), "x");
  EXPECT_EQ(n.stem_for("a/b/c.png"), "c");
  EXPECT_EQ(n.stem_for("a/b/c.png"), "c-2");
  EXPECT_EQ(n.stem_for("other/c.jpg"), "c-3");
  EXPECT_EQ(n.stem_for(""), "input");
  EXPECT_EQ(n.stem_for(".."), "input-2");
  EXPECT_EQ(n.stem_for("../../etc/passwd"), "passwd");
}

TEST(OutputNamer, CollisionsWithGeneratedNamesAndCase) {
  OutputNamer n;
  EXPECT_EQ(n.stem_for("c.png"), "c");
  EXPECT_EQ(n.stem_for("c-2.png"), "c-2");
  EXPECT_EQ(n.stem_for("c.jpg"), "c-3");  // "c-2" is taken by a real input
  EXPECT_EQ(n.stem_for("Dog.jpg"), "Dog");
  EXPECT_EQ(n.stem_for("dog.png"), "dog-2");  // would clash on a case-insensitive file system
}

TEST(UtcTimestamp, Format) {
  const std::string t = utc_timestamp();
  EXPECT_TRUE(std::regex_match(t, std::regex(R"(20\d\d-[01]\d-[0-3]\dT[0-2]\d:[0-5]\d:[0-6]\dZ)"))) << t;
}

}  // namespace
}  // namespace cnnvis
