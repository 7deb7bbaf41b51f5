// Collecting the activation vectors an activation atlas is made of (Carter et al., "Activation Atlas",
// distill.pub 2019): per image, a few random spatial positions of one layer away from the map's border,
// the C-vector of activations at each, and optionally its attribution to classes: activation times the
// gradient of the class logit with respect to that activation vector, summed over channels (how much the
// vector pushes the logit, to first order). Torch-free interface.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "cnnvis/io/atlas_store.h"
#include "cnnvis/models/loaded_model.h"

namespace cnnvis {

// Which classes get an attribution per sample.
struct AtlasAttribution {
  enum class Mode { none, all, top } mode = Mode::none;
  int top_k = 0;  // Mode::top: the image's k most probable classes
  // Classes per sample for a model with num_classes classes.
  int classes_per_sample(int num_classes) const;
};
// "none", "all" or "top:K" (K >= 1). "auto": all for models with at most 100 classes, else top:10.
AtlasAttribution parse_atlas_attribution(const std::string& text, int num_classes);

struct AtlasCollectOptions {
  std::string layer;           // name or alias
  int samples_per_image = 1;   // distinct positions per image (fewer when the map has fewer)
  int border = 1;              // positions at least this many cells from every edge of the map (clamped
                               // so that at least the centre remains)
  std::uint64_t seed = 0;
  AtlasAttribution attribution;
};

struct AtlasPoint {
  int x = 0, y = 0;                     // position in the layer's map (0, 0 for flat layers)
  std::vector<float> activation;        // C values
  std::vector<std::int64_t> attr_classes;  // classes_per_sample entries
  std::vector<float> attr_values;
};

struct AtlasImageSamples {
  Prediction top;  // the image's top-1 class
  std::vector<AtlasPoint> points;
};

// The positions of an input's samples in an h x w map: a function of (seed, key, sample) only, so an
// image gets the same positions whichever batch, shard or machine processes it. Distinct positions.
std::vector<std::pair<int, int>> atlas_sample_positions(const std::string& key, std::uint64_t seed, int width,
                                                        int height, int samples, int border);

// inputs: CV_32FC3 RGB [0, 1] at the card's size; keys: one per input (see InputFile). Throws
// UsageError for an unknown layer or a layer without channels.
std::vector<AtlasImageSamples> collect_atlas_samples(LoadedModel& model, const std::vector<cv::Mat>& inputs,
                                                     const std::vector<std::string>& keys,
                                                     const AtlasCollectOptions& options);

// Appends collected samples to an in-memory collection (for atlases of a few thousand images that need no
// files; large runs stream into an AtlasCollectionWriter instead). keys[i] names samples[i]'s input and
// serves as its path. Sets the collection's channel count from the first sample; rows stay in order.
void append_to_collection(AtlasCollection& collection, const std::vector<AtlasImageSamples>& samples,
                          const std::vector<std::string>& keys);

}  // namespace cnnvis
