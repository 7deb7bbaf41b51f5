// Batch bookkeeping: input keys, order-independent output stems for hostile names, shards, resume
// checks, manifest round trip and merging.
#include "cnnvis/io/batch.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include "cnnvis/core/errors.h"
#include "cnnvis/io/html_index.h"
#include "cnnvis/io/inputs.h"
#include "cnnvis/io/manifest.h"

namespace cnnvis {
namespace {

namespace fs = std::filesystem;

bool stem_is_safe(const std::string& stem) {
  return !stem.empty() && stem != "." && stem != ".." && stem.find('/') == std::string::npos &&
         stem.find('\\') == std::string::npos &&
         std::all_of(stem.begin(), stem.end(), [](unsigned char c) { return c > 32 && c < 127; });
}

TEST(OutputStems, HostileNamesStayInsideAndDuplicatesAreSeparated) {
  const std::vector<std::string> keys = {"../../etc/passwd.jpg", "/abs/path/x.jpg", "a/x.jpg", "b/X.png",
                                         "caf\xc3\xa9.jpg", "caf\xc3\xa8.jpg", "..jpg", ".hidden.png", "a b#?.jpg",
                                         "dir/..", "\xe6\x97\xa5\xe6\x9c\xac.png"};
  const auto stems = assign_output_stems(keys);
  ASSERT_EQ(stems.size(), keys.size());
  std::set<std::string> lower;
  for (const auto& s : stems) {
    EXPECT_TRUE(stem_is_safe(s)) << s;
    std::string l = s;
    std::transform(l.begin(), l.end(), l.begin(), ::tolower);
    EXPECT_TRUE(lower.insert(l).second) << "duplicate stem " << s;
    // Any suffix appended to a stem stays a file name inside the output directory.
    const fs::path p = (fs::path("/out") / (s + ".gradcam.png")).lexically_normal();
    EXPECT_EQ(p.parent_path(), fs::path("/out")) << s;
  }
  EXPECT_EQ(stems[0], "passwd");
  EXPECT_EQ(stems[2].rfind("x-", 0), 0u) << stems[2];  // a/x and b/X share "x": both hashed
  EXPECT_EQ(stems[3].rfind("X-", 0), 0u) << stems[3];
  EXPECT_EQ(stems[2].size(), 10u);
}

TEST(OutputStems, DoNotDependOnInputOrder) {
  std::vector<std::string> keys;
  for (int i = 0; i < 40; ++i) keys.push_back("d" + std::to_string(i % 7) + "/img" + std::to_string(i % 5) + ".jpg");
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  const auto stems = assign_output_stems(keys);
  std::vector<std::string> shuffled = keys;
  std::mt19937 rng(3);
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  const auto shuffled_stems = assign_output_stems(shuffled);
  for (std::size_t i = 0; i < shuffled.size(); ++i) {
    const auto at = std::find(keys.begin(), keys.end(), shuffled[i]) - keys.begin();
    EXPECT_EQ(shuffled_stems[i], stems[at]) << shuffled[i];
  }
  EXPECT_EQ(assign_output_stems({"only/one.jpg"})[0], "one");
}

TEST(Shard, ParsesAndRejects) {
  const Shard s = parse_shard("2/5");
  EXPECT_EQ(s.index, 2);
  EXPECT_EQ(s.count, 5);
  for (const char* bad : {"5/5", "1/0", "-1/3", "a/b", "3", "1/2/3", "", "1/"}) {
    EXPECT_THROW(parse_shard(bad), UsageError) << bad;
  }
}

TEST(Shard, PartitionIsCompleteBalancedAndOrderFree) {
  const int n = 4;
  std::vector<int> sizes(n, 0);
  for (int i = 0; i < 2000; ++i) {
    const std::string key = "photos/img_" + std::to_string(i) + ".jpg";
    const int s = shard_of(key, n);
    ASSERT_GE(s, 0);
    ASSERT_LT(s, n);
    EXPECT_EQ(s, shard_of(key, n));  // a pure function of the key
    ++sizes[s];
  }
  for (int s : sizes) EXPECT_NEAR(s, 500, 80);  // hashing splits about evenly
  EXPECT_EQ(shard_of("x", 1), 0);
}

TEST(InputFiles, KeysNameTheFolderArgumentAndAreUnique) {
  const fs::path root = fs::temp_directory_path() / ("cnnvis_keys_" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "photos" / "sub");
  fs::create_directories(root / "other");
  for (const fs::path& p : {root / "photos" / "a.jpg", root / "photos" / "sub" / "b.png", root / "other" / "a.jpg"}) {
    std::ofstream(p) << "x";
  }
  std::istringstream none;
  const auto files = collect_input_files({(root / "photos").string() + "/", (root / "other").string()}, true, none);
  ASSERT_EQ(files.size(), 3u);
  EXPECT_EQ(files[0].key, "photos/a.jpg");
  EXPECT_EQ(files[1].key, "photos/sub/b.png");
  EXPECT_EQ(files[2].key, "other/a.jpg");
  std::istringstream list((root / "photos" / "a.jpg").string() + "\n");
  const auto from_stdin = collect_input_files({"-"}, false, list);
  ASSERT_EQ(from_stdin.size(), 1u);
  EXPECT_EQ(from_stdin[0].key, (root / "photos" / "a.jpg").string());
  fs::remove_all(root);
}

class ResumeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cnnvis_resume_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::ofstream(dir_ / "in.jpg") << "image bytes";
    std::ofstream(dir_ / "x.png") << "png";
  }
  void TearDown() override { fs::remove_all(dir_); }
  nlohmann::json entry() const {
    return {{"input", "in.jpg"}, {"status", "ok"}, {"outputs", {{"overlay", "x.png"}}},
            {"input_file", input_stamp((dir_ / "in.jpg").string())}};
  }
  fs::path dir_;
};

TEST_F(ResumeTest, CompleteOnlyWhenOkInputUnchangedAndOutputsPresent) {
  const nlohmann::json stamp = input_stamp((dir_ / "in.jpg").string());
  ASSERT_FALSE(stamp.is_null());
  EXPECT_TRUE(entry_is_complete(entry(), dir_.string(), stamp));
  nlohmann::json failed = entry();
  failed["status"] = "error";
  EXPECT_FALSE(entry_is_complete(failed, dir_.string(), stamp));
  nlohmann::json escaping = entry();
  escaping["outputs"]["evil"] = "../x.png";
  EXPECT_FALSE(entry_is_complete(escaping, dir_.string(), stamp));
  nlohmann::json changed_input = stamp;
  changed_input["bytes"] = 1;
  EXPECT_FALSE(entry_is_complete(entry(), dir_.string(), changed_input));
  EXPECT_FALSE(entry_is_complete(entry(), dir_.string(), nullptr));
  fs::remove(dir_ / "x.png");
  EXPECT_FALSE(entry_is_complete(entry(), dir_.string(), stamp));
  std::ofstream(dir_ / "x.png");  // empty: an interrupted write
  EXPECT_FALSE(entry_is_complete(entry(), dir_.string(), stamp));
}

TEST(PathStaysInside, Cases) {
  EXPECT_TRUE(path_stays_inside("a.png"));
  EXPECT_TRUE(path_stays_inside("sub/a.png"));
  EXPECT_TRUE(path_stays_inside("sub/../a.png"));
  EXPECT_FALSE(path_stays_inside("../a.png"));
  EXPECT_FALSE(path_stays_inside("sub/../../a.png"));
  EXPECT_FALSE(path_stays_inside("/etc/passwd"));
  EXPECT_FALSE(path_stays_inside(""));
  EXPECT_FALSE(path_stays_inside("."));
}

TEST(ManifestEntryFromJson, RoundTripsThroughToJson) {
  Manifest m("/tmp", "gradcam");
  ManifestEntry e;
  e.input = "a.jpg";
  e.outputs = {{"overlay", "a.overlay.png"}, {"cam", "a.npy"}};
  e.predictions = nlohmann::json::array({{{"index", 1}, {"label", "x"}, {"probability", 0.5}}});
  e.timings_ms = {{"load", 1.5}};
  e.extra = {{"key", "dir/a.jpg"}, {"maps", {1, 2}}};
  m.add(e);
  const nlohmann::json item = m.to_json()["inputs"][0];
  Manifest again("/tmp", "gradcam");
  again.add(manifest_entry_from_json(item));
  EXPECT_EQ(again.to_json()["inputs"][0], item);
}

class MergeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("cnnvis_merge_" + std::to_string(::getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
  }
  void TearDown() override { fs::remove_all(root_); }
  void part(const std::string& name, int index, const std::vector<std::string>& inputs, const std::string& command = "gradcam",
            const std::string& status = "ok") {
    const fs::path dir = root_ / name;
    fs::create_directories(dir);
    Manifest m(dir.string(), command);
    m.header()["fingerprint"] = {{"sha256", "abc"}};
    m.header()["shard"] = {{"index", index}, {"count", 3}};
    for (const auto& input : inputs) {
      ManifestEntry e;
      e.input = input;
      e.status = status;
      e.extra["key"] = input;
      const std::string file = fs::path(input).stem().string() + ".png";
      std::ofstream(dir / file) << "p";
      e.outputs = {{"overlay", file}};
      m.add(e);
    }
    m.write();
  }
  fs::path root_;
};

TEST_F(MergeTest, JoinsPartsRewritesPathsAndReportsMissingShards) {
  part("s0", 0, {"a.jpg", "b.jpg"});
  part("s2", 2, {"c.jpg"});
  const MergeResult r = merge_manifests({(root_ / "s0").string(), (root_ / "s2").string()}, (root_ / "all").string());
  EXPECT_EQ(r.inputs, 3u);
  EXPECT_EQ(r.missing_shards, std::vector<int>{1});
  const nlohmann::json m = read_manifest((root_ / "all" / "manifest.json").string());
  EXPECT_EQ(m["summary"]["inputs"], 3);
  EXPECT_EQ(m["inputs"][2]["outputs"]["overlay"], "../s2/c.png");
  EXPECT_TRUE(fs::exists(root_ / "all" / "index.html"));
  // Every file the page references exists.
  std::ifstream in(root_ / "all" / "index.html");
  const std::string html((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const auto& ref : html_local_references(html)) EXPECT_TRUE(fs::exists(root_ / "all" / ref)) << ref;
}

TEST_F(MergeTest, CopyMakesAStandaloneDirectoryAndDuplicatesAreKeptOnce) {
  part("s0", 0, {"a.jpg"}, "gradcam", "error");
  part("s1", 1, {"a.jpg", "b.jpg"});
  part("s2", 2, {});
  MergeOptions o;
  o.copy = true;
  const MergeResult r =
      merge_manifests({(root_ / "s0").string(), (root_ / "s1").string(), (root_ / "s2").string()}, (root_ / "all").string(), o);
  EXPECT_EQ(r.inputs, 2u);
  EXPECT_EQ(r.duplicates, 1u);
  const nlohmann::json m = read_manifest((root_ / "all" / "manifest.json").string());
  EXPECT_EQ(m["inputs"][0]["status"], "ok");  // the successful entry wins
  EXPECT_EQ(m["inputs"][0]["outputs"]["overlay"], "a.png");
  EXPECT_TRUE(fs::exists(root_ / "all" / "b.png"));
  EXPECT_TRUE(r.missing_shards.empty());
}

TEST_F(MergeTest, RefusesMixedCommandsAndMissingParts) {
  part("s0", 0, {"a.jpg"});
  part("s1", 1, {"b.jpg"}, "saliency");
  EXPECT_THROW(merge_manifests({(root_ / "s0").string(), (root_ / "s1").string()}, (root_ / "all").string()), UsageError);
  EXPECT_THROW(merge_manifests({(root_ / "s0").string(), (root_ / "nope").string()}, (root_ / "all").string()), InputError);
  EXPECT_THROW(merge_manifests({(root_ / "s0").string()}, (root_ / "s0").string()), UsageError);
  MergeOptions force;
  force.force = true;
  EXPECT_NO_THROW(merge_manifests({(root_ / "s0").string(), (root_ / "s1").string()}, (root_ / "all").string(), force));
}

}  // namespace
}  // namespace cnnvis
