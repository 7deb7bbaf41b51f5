// Activation atlas (Carter, Armstrong, Schubert, Johnson, Olah: "Activation Atlas", distill.pub 2019):
// a map of everything a layer represents. Collected activation vectors (cnnvis/io/atlas_store.h) are
// laid out in 2-D by t-SNE on their directions (cosine), the layout is clipped to its 1st-99th
// percentiles and scaled to [0, 1], binned on grids, each cell's vectors are averaged, sparse cells are
// dropped, and every remaining cell gets an icon: a feature visualisation of its mean vector (direction
// objective at the centre position, weighted by the cosine, the vector optionally whitened by the inverse
// activation correlation) and a label, its top attributed class. The class atlas keeps only the samples
// whose attribution favours one class. Torch-free interface.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "cnnvis/embed/atlas_layout.h"
#include "cnnvis/embed/tsne.h"
#include "cnnvis/io/atlas_store.h"
#include "cnnvis/methods/activation_max.h"

namespace cnnvis {

struct ActivationAtlasOptions {
  std::vector<int> grids = {20, 40};  // cells per side, one atlas each
  int min_count = 3;                  // cells with fewer samples are dropped
  int top_classes = 3;                // classes listed per cell
  double low_percentile = 1, high_percentile = 99, margin = 0.1;  // layout normalisation (Lucid's)

  // Layout: t-SNE of the L2-normalised vectors (perplexity 50 as in the atlas), unless a layout is given.
  TsneOptions tsne = [] {
    TsneOptions t;
    t.perplexity = 50;
    return t;
  }();
  std::vector<float> layout;          // rows x 2 in the collection's order (e.g. from UMAP); empty: t-SNE
  std::int64_t max_points = 0;        // > 0: lay out at most this many samples, a seeded subset chosen by
                                      // each sample's key, so it is the same however the data was sharded

  // Class atlas: class_filter >= 0 keeps the samples whose top attribution is that class, plus the
  // class_top samples with the highest attribution to it.
  int class_filter = -1;
  std::int64_t class_top = 2000;

  // Icons.
  bool icons = true;
  bool whiten = true;
  float cosine_power = 2.0f;
  int icon_attempts = 1;   // images per cell; the one with the highest objective is kept
  int icon_batch = 32;     // cells optimised together
  ActivationMaxOptions icon;  // size, steps, parameterisation, transforms, seed (objective set per cell)

  ProgressCallback progress;  // stages: "t-SNE iterations", "icons"
};

struct ActivationAtlasGrid {
  int grid = 0;
  std::vector<AtlasCellSummary> cells;  // members index ActivationAtlasResult::rows
  std::vector<cv::Mat> icons;           // per cell, CV_32FC3 RGB [0, 1]; empty without icons
  std::vector<float> icon_objective;    // per cell: the objective of its icon (untransformed)
};

struct ActivationAtlasResult {
  std::vector<std::int64_t> rows;  // the collection rows laid out (all, or the class/max_points subset)
  std::vector<float> layout;       // rows x 2 as computed (t-SNE) or given
  std::vector<float> layout01;     // rows x 2 normalised to [0, 1]
  bool tsne_run = false;
  TsneResult tsne;
  std::vector<ActivationAtlasGrid> grids;
  double layout_s = 0, icons_s = 0;
};

// model is needed only for icons (may be null with options.icons false); its card, layer and weights must
// be those the collection was made with (UsageError otherwise). Throws UsageError for too few samples, a
// layout of the wrong size, a class filter without attributions.
ActivationAtlasResult run_activation_atlas(LoadedModel* model, const AtlasCollection& collection,
                                           const ActivationAtlasOptions& options);

}  // namespace cnnvis
