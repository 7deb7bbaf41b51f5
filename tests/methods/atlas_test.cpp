// Activation atlas: sample positions, activation vectors and attributions against hand-computed values on
// a tiny network, and the whole pipeline (layout, cells, icons) on synthetic clusters.
#include <cmath>
#include <filesystem>
#include <set>

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include "cnnvis/core/errors.h"
#include "cnnvis/methods/activation_atlas.h"
#include "cnnvis/methods/atlas_collect.h"
#include "cnnvis/models/layers.h"
#include "cnnvis/models/network.h"
#include "tiny_models.h"

namespace cnnvis {
namespace {

// conv (1x1, 3 -> 2) -> relu -> global average pool -> linear (2 -> 3), input 4x4, identity normalisation.
//   a0 = R + 2G - B,  a1 = -R + 0.5B + 0.25;  logits = W . GAP(relu(a)),  W = [[1, -1], [0.5, 2], [-1, 1]]
LoadedModel tiny_model() {
  return testing::tiny_conv_gap_model({1, 2, -1, -1, 0, 0.5f}, {0, 0.25f}, {1, -1, 0.5f, 2, -1, 1}, 4, {"a", "b", "c"});
}

cv::Mat image(float r_scale, float g_scale, float b) {
  cv::Mat m(4, 4, CV_32FC3);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) m.at<cv::Vec3f>(y, x) = cv::Vec3f(r_scale * x / 4.0f, g_scale * y / 4.0f, b);
  return m;
}

TEST(AtlasPositions, DeterministicDistinctAndAwayFromTheBorder) {
  const auto p = atlas_sample_positions("photos/cat.jpg", 7, 14, 14, 20, 2);
  ASSERT_EQ(p.size(), 20u);
  std::set<std::pair<int, int>> distinct(p.begin(), p.end());
  EXPECT_EQ(distinct.size(), 20u);
  for (const auto& [x, y] : p) {
    EXPECT_GE(x, 2);
    EXPECT_LE(x, 11);
    EXPECT_GE(y, 2);
    EXPECT_LE(y, 11);
  }
  EXPECT_EQ(p, atlas_sample_positions("photos/cat.jpg", 7, 14, 14, 20, 2));
  // The first picks do not depend on how many are drawn; another key or seed gives other positions.
  const auto first3 = atlas_sample_positions("photos/cat.jpg", 7, 14, 14, 3, 2);
  const std::vector<std::pair<int, int>> prefix(p.begin(), p.begin() + 3);
  EXPECT_EQ(first3, prefix);
  EXPECT_NE(p, atlas_sample_positions("photos/dog.jpg", 7, 14, 14, 20, 2));
  EXPECT_NE(p, atlas_sample_positions("photos/cat.jpg", 8, 14, 14, 20, 2));
  // Border clamped so the centre remains; never more samples than positions.
  EXPECT_EQ(atlas_sample_positions("k", 0, 3, 3, 5, 4), (std::vector<std::pair<int, int>>{{1, 1}}));
  EXPECT_EQ(atlas_sample_positions("k", 0, 1, 1, 2, 1), (std::vector<std::pair<int, int>>{{0, 0}}));
  EXPECT_EQ(atlas_sample_positions("k", 0, 4, 4, 100, 0).size(), 16u);
}

TEST(AtlasAttributionOption, Parses) {
  EXPECT_EQ(parse_atlas_attribution("auto", 10).mode, AtlasAttribution::Mode::all);
  EXPECT_EQ(parse_atlas_attribution("auto", 1000).classes_per_sample(1000), 10);
  EXPECT_EQ(parse_atlas_attribution("top:3", 1000).classes_per_sample(1000), 3);
  EXPECT_EQ(parse_atlas_attribution("top:30", 10).classes_per_sample(10), 10);
  EXPECT_EQ(parse_atlas_attribution("none", 10).classes_per_sample(10), 0);
  EXPECT_THROW(parse_atlas_attribution("top:0", 10), UsageError);
  EXPECT_THROW(parse_atlas_attribution("top:x", 10), UsageError);
  EXPECT_THROW(parse_atlas_attribution("most", 10), UsageError);
}

TEST(AtlasCollect, ActivationsAndAttributionsMatchHandComputation) {
  LoadedModel model = tiny_model();
  const std::vector<cv::Mat> inputs = {image(1, 1, 0.5f), image(-1, 2, 0.2f)};
  const std::vector<std::string> keys = {"one.png", "two.png"};
  AtlasCollectOptions o;
  o.layer = "relu";
  o.samples_per_image = 3;
  o.border = 0;
  o.seed = 5;
  o.attribution = parse_atlas_attribution("all", 3);
  const auto samples = collect_atlas_samples(model, inputs, keys, o);
  ASSERT_EQ(samples.size(), 2u);
  const float w[3][2] = {{1, -1}, {0.5f, 2}, {-1, 1}};
  for (std::size_t i = 0; i < 2; ++i) {
    const cv::Mat& img = inputs[i];
    // Expected map and logits by hand.
    float relu[2][4][4];
    double gap[2] = {0, 0};
    for (int y = 0; y < 4; ++y) {
      for (int x = 0; x < 4; ++x) {
        const cv::Vec3f p = img.at<cv::Vec3f>(y, x);
        relu[0][y][x] = std::max(0.0f, p[0] + 2 * p[1] - p[2]);
        relu[1][y][x] = std::max(0.0f, -p[0] + 0.5f * p[2] + 0.25f);
        gap[0] += relu[0][y][x] / 16;
        gap[1] += relu[1][y][x] / 16;
      }
    }
    int best = 0;
    double best_logit = -1e9;
    for (int c = 0; c < 3; ++c) {
      const double logit = w[c][0] * gap[0] + w[c][1] * gap[1];
      if (logit > best_logit) best_logit = logit, best = c;
    }
    EXPECT_EQ(samples[i].top.index, best);
    const auto positions = atlas_sample_positions(keys[i], 5, 4, 4, 3, 0);
    ASSERT_EQ(samples[i].points.size(), 3u);
    for (std::size_t s = 0; s < 3; ++s) {
      const AtlasPoint& p = samples[i].points[s];
      EXPECT_EQ(p.x, positions[s].first);
      EXPECT_EQ(p.y, positions[s].second);
      ASSERT_EQ(p.activation.size(), 2u);
      EXPECT_NEAR(p.activation[0], relu[0][p.y][p.x], 1e-6);
      EXPECT_NEAR(p.activation[1], relu[1][p.y][p.x], 1e-6);
      // d logit_c / d relu_k(x, y) = W[c][k] / 16, so attribution_c = sum_k relu_k W[c][k] / 16.
      ASSERT_EQ(p.attr_classes.size(), 3u);
      for (int c = 0; c < 3; ++c) {
        EXPECT_EQ(p.attr_classes[c], c);
        EXPECT_NEAR(p.attr_values[c], (relu[0][p.y][p.x] * w[c][0] + relu[1][p.y][p.x] * w[c][1]) / 16, 1e-6);
      }
    }
  }
  // top:1 computes only the predicted class.
  o.attribution = parse_atlas_attribution("top:1", 3);
  const auto top = collect_atlas_samples(model, inputs, keys, o);
  for (std::size_t i = 0; i < 2; ++i) {
    ASSERT_EQ(top[i].points[0].attr_classes.size(), 1u);
    EXPECT_EQ(top[i].points[0].attr_classes[0], samples[i].top.index);
    EXPECT_FLOAT_EQ(top[i].points[0].attr_values[0], samples[i].points[0].attr_values[samples[i].top.index]);
  }
  // Batch composition does not change an image's samples.
  o.attribution = parse_atlas_attribution("all", 3);
  const auto alone = collect_atlas_samples(model, {inputs[1]}, {keys[1]}, o);
  for (std::size_t s = 0; s < 3; ++s) {
    EXPECT_EQ(alone[0].points[s].activation, samples[1].points[s].activation);
    EXPECT_EQ(alone[0].points[s].attr_values, samples[1].points[s].attr_values);
  }
  o.layer = "nope";
  EXPECT_THROW(collect_atlas_samples(model, inputs, keys, o), UsageError);
}

// Three well-separated directions in a 6-channel layer: cluster c has its mass on channels 2c and 2c + 1.
AtlasCollection synthetic_collection(int per_cluster) {
  AtlasCollection c;
  c.info.model = "tiny";
  c.info.layer = "relu";
  c.info.channels = 6;
  c.info.num_classes = 3;
  c.info.attribution_classes = 1;
  c.info.labels = {"a", "b", "c"};
  std::uint64_t state = 11;
  auto noise = [&]() {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<float>((state >> 40) % 1000) / 1000.0f * 0.1f;
  };
  for (int cluster = 0; cluster < 3; ++cluster) {
    for (int i = 0; i < per_cluster; ++i) {
      for (int j = 0; j < 6; ++j) c.activations.push_back((j / 2 == cluster ? 1.0f : 0.0f) + noise());
      c.attr_classes.push_back(cluster);
      c.attr_values.push_back(1.0f + noise());
      AtlasSample s;
      s.key = "c" + std::to_string(cluster) + "_" + std::to_string(1000 + i);
      s.path = s.key;
      s.predicted = cluster;
      c.samples.push_back(s);
    }
  }
  c.rows = static_cast<std::int64_t>(c.samples.size());
  return c;
}

TEST(ActivationAtlas, ClustersLandInSeparateCellsWithTheirLabels) {
  const AtlasCollection c = synthetic_collection(40);
  ActivationAtlasOptions o;
  o.grids = {4};
  o.min_count = 3;
  o.icons = false;
  o.tsne.perplexity = 15;
  o.tsne.iterations = 500;
  const ActivationAtlasResult r = run_activation_atlas(nullptr, c, o);
  ASSERT_EQ(r.rows.size(), 120u);
  ASSERT_TRUE(r.tsne_run);
  ASSERT_EQ(r.grids.size(), 1u);
  std::int64_t covered = 0;
  for (const AtlasCellSummary& cell : r.grids[0].cells) {
    // Every cell is pure: its samples come from one cluster, and its label is that cluster's class.
    std::set<int> clusters;
    for (std::int64_t m : cell.members) clusters.insert(c.samples[r.rows[m]].predicted);
    EXPECT_EQ(clusters.size(), 1u) << "cell " << cell.column << "," << cell.row;
    ASSERT_FALSE(cell.top_classes.empty());
    EXPECT_EQ(cell.top_classes[0].first, *clusters.begin());
    // The cell's mean vector points along its cluster's channels.
    const int k = *clusters.begin();
    EXPECT_GT(cell.mean_activation[2 * k], 0.9f);
    EXPECT_LT(cell.mean_activation[(2 * k + 2) % 6], 0.2f);
    covered += cell.count;
  }
  EXPECT_GT(covered, 100);  // few samples in sparse (dropped) cells

  // Same options, same result; a sample subset by key; a class atlas; a given layout.
  const ActivationAtlasResult again = run_activation_atlas(nullptr, c, o);
  EXPECT_EQ(again.layout, r.layout);
  o.max_points = 50;
  EXPECT_EQ(run_activation_atlas(nullptr, c, o).rows.size(), 50u);
  o.max_points = 0;
  o.class_filter = 1;
  o.class_top = 0;
  o.grids = {2};
  const ActivationAtlasResult cls = run_activation_atlas(nullptr, c, o);
  EXPECT_EQ(cls.rows.size(), 40u);
  for (std::int64_t row : cls.rows) EXPECT_EQ(c.samples[row].predicted, 1);
  o.class_filter = -1;
  o.layout.assign(static_cast<std::size_t>(c.rows) * 2, 0.0f);
  for (std::int64_t i = 0; i < c.rows; ++i) o.layout[2 * i] = static_cast<float>(i / 40);  // x = cluster
  o.grids = {3};
  o.min_count = 1;
  const ActivationAtlasResult given = run_activation_atlas(nullptr, c, o);
  EXPECT_FALSE(given.tsne_run);
  ASSERT_EQ(given.grids[0].cells.size(), 3u);
  for (const auto& cell : given.grids[0].cells) EXPECT_EQ(cell.count, 40);
  o.layout.resize(10);
  EXPECT_THROW(run_activation_atlas(nullptr, c, o), UsageError);
}

TEST(ActivationAtlas, IconsDriveTheirCellsDirection) {
  LoadedModel model = tiny_model();
  // Collect from real images of the tiny network, then draw icons for a 1 x 1 grid.
  std::vector<cv::Mat> inputs;
  std::vector<std::string> keys;
  for (int i = 0; i < 12; ++i) {
    inputs.push_back(image(1.0f + 0.1f * i, 0.5f, 0.1f * (i % 4)));
    keys.push_back("img" + std::to_string(i));
  }
  AtlasCollectOptions co;
  co.layer = "relu";
  co.samples_per_image = 2;
  co.border = 0;
  co.attribution = parse_atlas_attribution("all", 3);
  AtlasCollection c;
  c.info.model = "tiny";
  c.info.layer = "relu";
  c.info.num_classes = 3;
  c.info.attribution_classes = 3;
  append_to_collection(c, collect_atlas_samples(model, inputs, keys, co), keys);
  ASSERT_EQ(c.rows, 24);
  ASSERT_EQ(c.info.channels, 2);
  EXPECT_EQ(c.samples[3].key, "img1");
  EXPECT_EQ(c.samples[3].sample, 1);
  ActivationAtlasOptions o;
  o.grids = {1};
  o.min_count = 1;
  o.tsne.iterations = 100;
  o.tsne.perplexity = 5;
  o.whiten = false;
  o.icon.width = o.icon.height = 16;
  o.icon.steps = 40;
  o.icon.transforms.enabled = false;
  o.icon_attempts = 2;
  const ActivationAtlasResult r = run_activation_atlas(&model, c, o);
  ASSERT_EQ(r.grids[0].cells.size(), 1u);
  ASSERT_EQ(r.grids[0].icons.size(), 1u);
  const cv::Mat& icon = r.grids[0].icons[0];
  EXPECT_EQ(icon.cols, 16);
  EXPECT_EQ(icon.type(), CV_32FC3);
  // The icon maximises the cell's direction at the centre: it must beat a grey image clearly.
  Objective obj;
  obj.kind = ObjectiveKind::direction_neuron;
  obj.layer = "relu";
  obj.direction = r.grids[0].cells[0].mean_activation;
  obj.cosine_power = o.cosine_power;
  const cv::Mat grey(16, 16, CV_32FC3, cv::Scalar(0.5, 0.5, 0.5));
  const std::vector<float> v = evaluate_objectives(model, {obj, obj}, {icon, grey});
  EXPECT_NEAR(v[0], r.grids[0].icon_objective[0], 1e-5);
  EXPECT_GT(v[0], 2 * v[1] + 0.05f);
  // The model must be the one the collection came from.
  c.info.model = "other";
  EXPECT_THROW(run_activation_atlas(&model, c, o), UsageError);
}

}  // namespace
}  // namespace cnnvis
