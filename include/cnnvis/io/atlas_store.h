// The activation samples an atlas is built from, on disk: one directory per collection run (or shard),
// written as the run streams over its inputs, so memory stays bounded by one batch however many images
// there are. Several directories (the shards of one job, spread over machines) are read back as one
// collection whose samples are sorted by (input key, sample number), so the merged shards and a single
// run over the same inputs give the same collection, in the same order.
//
// A directory holds:
//   atlas_collection.json   model, layer, weights sha256, channels, classes, options, shard, counts
//   atlas_activations.npy   float32 rows x channels: the activation vector of every sample
//   atlas_attr_classes.npy  int64 rows x K: the classes whose attribution was computed (K = 0: none)
//   atlas_attr_values.npy   float32 rows x K: activation . d logit / d activation for those classes
//   atlas_samples.csv       index,key,path,sample,x,y,predicted
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace cnnvis {

class NpyRowWriter;

// What every directory of one collection must agree on to be merged.
struct AtlasCollectionInfo {
  std::string model;            // card name
  std::string layer;            // canonical layer name
  std::string weights_sha256;   // of the weights the activations came from
  int channels = 0;             // length of an activation vector
  int num_classes = 0;
  int attribution_classes = 0;  // K per sample (0: no attribution)
  std::vector<std::string> labels;  // class names from the card
  nlohmann::json options;       // collection options (samples per image, border, seed, attribution)
};

struct AtlasSample {
  std::string key;   // the input's key (see InputFile): sorts and identifies it whatever the mount
  std::string path;  // the input path as given
  int sample = 0;    // which of the input's samples
  int x = 0, y = 0;  // position in the layer's map
  int predicted = -1;  // top-1 class of the image
};

// Streams samples into a directory (created if needed). finish() writes atlas_collection.json last, so a
// directory with that file is complete; until then the arrays are temporary files.
class AtlasCollectionWriter {
 public:
  AtlasCollectionWriter(const std::string& dir, AtlasCollectionInfo info);
  ~AtlasCollectionWriter();
  AtlasCollectionWriter(const AtlasCollectionWriter&) = delete;
  AtlasCollectionWriter& operator=(const AtlasCollectionWriter&) = delete;

  // activation: info.channels floats; attr_classes / attr_values: info.attribution_classes each.
  void add(const AtlasSample& sample, const float* activation, const std::int64_t* attr_classes,
           const float* attr_values);
  std::int64_t rows() const;
  // extra: merged into the JSON (e.g. the shard and input counts). Throws OutputError.
  void finish(const nlohmann::json& extra = {});

 private:
  std::string dir_;
  AtlasCollectionInfo info_;
  std::unique_ptr<NpyRowWriter> activations_, attr_classes_, attr_values_;
  std::string samples_csv_;
  std::int64_t rows_ = 0;
};

struct AtlasCollection {
  AtlasCollectionInfo info;
  std::int64_t rows = 0;
  std::vector<float> activations;        // rows x channels
  std::vector<std::int64_t> attr_classes;  // rows x K
  std::vector<float> attr_values;        // rows x K
  std::vector<AtlasSample> samples;
  std::vector<std::string> parts;        // the directories read
};

// Parses an atlas_samples.csv (its text; name is used in messages): the header, then one record per
// sample (RFC 4180 quoting). Throws InputError naming the line and the problem.
std::vector<AtlasSample> parse_atlas_samples_csv(const std::string& text, const std::string& name);

// Reads one or more collection directories and merges them: they must agree on model, layer, weights,
// channels, classes and attribution classes (UsageError naming the two parts otherwise). A sample whose
// (key, sample) appears in several parts is kept once. Samples are sorted by (key, sample). Throws
// InputError naming the file for a missing, incomplete or malformed part.
AtlasCollection read_atlas_collections(const std::vector<std::string>& dirs);

// A 64-bit hash of an input key mixed with a seed (FNV-1a, then SplitMix64): the same on every machine,
// so what is drawn per sample (positions, subsets) never depends on batches, shards or order.
std::uint64_t atlas_key_hash(const std::string& key, std::uint64_t seed);

// The attributed class with the highest attribution for a sample (-1 when there is no attribution).
int top_attributed_class(const AtlasCollection& c, std::int64_t row);
// The sample's attribution to class k (NaN when k was not among its computed classes).
float attribution_to(const AtlasCollection& c, std::int64_t row, int k);

}  // namespace cnnvis
