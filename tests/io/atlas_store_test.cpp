// Atlas collections on disk: streamed .npy rows, CSV round trip with awkward paths, merging shards into
// one sorted collection, and clear errors for incomplete, mismatched or corrupt parts.
#include <cmath>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <unistd.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/io/atlas_store.h"
#include "cnnvis/io/npy.h"

namespace cnnvis {
namespace {

namespace fs = std::filesystem;

fs::path temp_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("cnnvis_atlas_store_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

AtlasCollectionInfo info(int channels = 2, int k = 1) {
  AtlasCollectionInfo i;
  i.model = "tiny";
  i.layer = "relu";
  i.weights_sha256 = "abc";
  i.channels = channels;
  i.num_classes = 3;
  i.attribution_classes = k;
  i.labels = {"a", "b", "c"};
  return i;
}

void add(AtlasCollectionWriter& w, const std::string& key, int sample, float v, std::int64_t cls, float attr) {
  const float act[2] = {v, -v};
  AtlasSample s{key, "/data/" + key, sample, sample, 2 * sample, static_cast<int>(cls)};
  w.add(s, act, &cls, &attr);
}

TEST(NpyRowWriter, StreamsRowsAndFixesTheHeader) {
  const fs::path dir = temp_dir("npy");
  const std::string path = (dir / "rows.npy").string();
  {
    NpyRowWriter w(path, "<f4", {3});
    const float a[6] = {1, 2, 3, 4, 5, 6};
    w.append_f32(a, 2);
    w.append_f32(a, 1);
    EXPECT_FALSE(fs::exists(path));  // only the temporary file until finish()
    w.finish();
  }
  const NpyArray r = read_npy(path);
  EXPECT_EQ(r.shape, (std::vector<std::int64_t>{3, 3}));
  EXPECT_EQ(r.to_float(), (std::vector<float>{1, 2, 3, 4, 5, 6, 1, 2, 3}));
  // The same bytes as write_npy of the whole array.
  const std::string whole = (dir / "whole.npy").string();
  const float all[9] = {1, 2, 3, 4, 5, 6, 1, 2, 3};
  write_npy(whole, all, {3, 3});
  std::ifstream a(path, std::ios::binary), b(whole, std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(a), {}), std::string(std::istreambuf_iterator<char>(b), {}));
  {
    NpyRowWriter w((dir / "never.npy").string(), "<i8", {1});
    const std::int64_t v = 5;
    w.append_i64(&v, 1);
    EXPECT_THROW(w.append_f32(nullptr, 0), UsageError);
  }  // destroyed without finish(): nothing stays behind
  EXPECT_FALSE(fs::exists(dir / "never.npy"));
  EXPECT_FALSE(fs::exists(dir / "never.npy.tmp"));
  fs::remove_all(dir);
}

TEST(AtlasStore, RoundTripWithAwkwardPaths) {
  const fs::path dir = temp_dir("roundtrip");
  {
    AtlasCollectionWriter w(dir.string(), info());
    const float act[2] = {1.5f, -2.0f};
    const std::int64_t cls = 2;
    const float attr = 0.25f;
    w.add({"photos/a,b \"quoted\".jpg", "/x/photos/a,b \"quoted\".jpg", 0, 3, 4, 1}, act, &cls, &attr);
    w.add({"photos/line\nbreak.png", "/x/photos/line\nbreak.png", 1, 0, 0, 0}, act, &cls, &attr);
    w.finish({{"inputs_ok", 2}});
  }
  const AtlasCollection c = read_atlas_collections({dir.string()});
  ASSERT_EQ(c.rows, 2);
  EXPECT_EQ(c.info.layer, "relu");
  EXPECT_EQ(c.samples[0].key, "photos/a,b \"quoted\".jpg");
  EXPECT_EQ(c.samples[0].x, 3);
  EXPECT_EQ(c.samples[0].y, 4);
  EXPECT_EQ(c.samples[0].predicted, 1);
  EXPECT_EQ(c.samples[1].path, "/x/photos/line\nbreak.png");
  EXPECT_EQ(c.activations, (std::vector<float>{1.5f, -2.0f, 1.5f, -2.0f}));
  EXPECT_EQ(top_attributed_class(c, 0), 2);
  EXPECT_FLOAT_EQ(attribution_to(c, 0, 2), 0.25f);
  EXPECT_TRUE(std::isnan(attribution_to(c, 0, 1)));
  fs::remove_all(dir);
}

TEST(AtlasStore, ShardsMergeIntoOneSortedCollection) {
  const fs::path a = temp_dir("shard_a"), b = temp_dir("shard_b"), whole = temp_dir("whole");
  {
    AtlasCollectionWriter w(a.string(), info());
    add(w, "img/3.png", 0, 3, 0, 1);
    add(w, "img/1.png", 1, 1.5f, 1, 2);
    add(w, "img/1.png", 0, 1, 1, 2);
    w.finish();
  }
  {
    AtlasCollectionWriter w(b.string(), info());
    add(w, "img/2.png", 0, 2, 2, 3);
    add(w, "img/3.png", 0, 3, 0, 1);  // the same sample in both parts: kept once
    w.finish();
  }
  {
    AtlasCollectionWriter w(whole.string(), info());
    add(w, "img/1.png", 0, 1, 1, 2);
    add(w, "img/1.png", 1, 1.5f, 1, 2);
    add(w, "img/2.png", 0, 2, 2, 3);
    add(w, "img/3.png", 0, 3, 0, 1);
    w.finish();
  }
  const AtlasCollection merged = read_atlas_collections({b.string(), a.string()});
  const AtlasCollection single = read_atlas_collections({whole.string()});
  ASSERT_EQ(merged.rows, 4);
  EXPECT_EQ(merged.activations, single.activations);
  EXPECT_EQ(merged.attr_classes, single.attr_classes);
  EXPECT_EQ(merged.attr_values, single.attr_values);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(merged.samples[i].key, single.samples[i].key);
    EXPECT_EQ(merged.samples[i].sample, single.samples[i].sample);
  }
  EXPECT_EQ(merged.samples[0].key, "img/1.png");
  EXPECT_EQ(merged.samples[0].sample, 0);
  EXPECT_EQ(merged.samples[1].sample, 1);
  fs::remove_all(a);
  fs::remove_all(b);
  fs::remove_all(whole);
}

TEST(AtlasStore, RefusesMismatchedIncompleteAndCorruptParts) {
  const fs::path a = temp_dir("bad_a"), b = temp_dir("bad_b");
  {
    AtlasCollectionWriter w(a.string(), info());
    add(w, "x.png", 0, 1, 0, 1);
    w.finish();
  }
  AtlasCollectionInfo other = info();
  other.layer = "conv";
  {
    AtlasCollectionWriter w(b.string(), other);
    add(w, "y.png", 0, 1, 0, 1);
    w.finish();
  }
  try {
    read_atlas_collections({a.string(), b.string()});
    FAIL() << "merged collections of different layers";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("layer relu vs conv"), std::string::npos) << e.what();
  }
  // An unfinished collection has no atlas_collection.json.
  const fs::path unfinished = temp_dir("unfinished");
  {
    AtlasCollectionWriter w(unfinished.string(), info());
    add(w, "z.png", 0, 1, 0, 1);
  }
  try {
    read_atlas_collections({unfinished.string()});
    FAIL() << "read an unfinished collection";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("atlas_collection.json: missing"), std::string::npos) << e.what();
  }
  // Activation rows that disagree with the description.
  const float three[3] = {1, 2, 3};
  write_npy((a / "atlas_activations.npy").string(), three, {1, 3});
  EXPECT_THROW(read_atlas_collections({a.string()}), InputError);
  // A non-finite activation.
  const float nan_row[2] = {NAN, 1};
  write_npy((a / "atlas_activations.npy").string(), nan_row, {1, 2});
  EXPECT_THROW(read_atlas_collections({a.string()}), InputError);
  // Not JSON.
  std::ofstream((b / "atlas_collection.json").string()) << "{not json";
  EXPECT_THROW(read_atlas_collections({b.string()}), InputError);
  EXPECT_THROW(read_atlas_collections({}), UsageError);
  fs::remove_all(a);
  fs::remove_all(b);
  fs::remove_all(unfinished);
}

}  // namespace
}  // namespace cnnvis
