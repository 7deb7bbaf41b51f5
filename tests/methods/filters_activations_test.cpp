// Filters as pictures and feature-map grids, on hand-built networks.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include "cnnvis/core/errors.h"
#include "cnnvis/methods/activations.h"
#include "cnnvis/methods/filters.h"
#include "cnnvis/models/layers.h"
#include "cnnvis/models/network.h"

namespace cnnvis {
namespace {

// conv1 (3 -> 2, 3x3) -> relu1 -> conv2 (2 -> 4, 1x1) -> gap -> fc (4 -> 2)
LoadedModel two_conv_model() {
  auto root = std::make_unique<Sequential>("", "Tiny");
  auto* conv1 = root->add(std::make_unique<Conv2d>("conv1", 3, 2, 3, 1, 1));
  root->add(std::make_unique<ReLU>("relu1"));
  auto* conv2 = root->add(std::make_unique<Conv2d>("conv2", 2, 4, 1));
  root->add(std::make_unique<AdaptiveAvgPool2d>("gap", 1));
  root->add(std::make_unique<Flatten>("flatten"));
  auto* fc = root->add(std::make_unique<Linear>("fc", 4, 2));
  conv1->weight = at::zeros({2, 3, 3, 3});
  conv1->weight[0][0][1][1] = 2.0f;   // filter 0: red centre
  conv1->weight[1][2][0][0] = -4.0f;  // filter 1: negative blue corner (the layer's max |w|)
  conv1->bias = at::zeros({2});
  conv2->weight = at::tensor({1.0f, 0.0f, 0.0f, 1.0f, -1.0f, 0.0f, 0.5f, 0.5f}).view({4, 2, 1, 1});
  conv2->bias = at::zeros({4});
  fc->weight = at::ones({2, 4});
  fc->bias = at::zeros({2});
  auto net = std::make_unique<Network>("tiny", std::move(root), 2);
  net->set_parameters_trainable(false);
  ModelCard card;
  card.name = card.architecture = "tiny";
  card.input_height = card.input_width = 6;
  card.mean = {0, 0, 0};
  card.std = {1, 1, 1};
  card.labels = {"a", "b"};
  return LoadedModel::from_network(std::move(net), card, "cpu");
}

TEST(Filters, FirstLayerAsRgbTiles) {
  LoadedModel model = two_conv_model();
  EXPECT_EQ(conv_layer_names(model), (std::vector<std::string>{"conv1", "conv2"}));
  const FilterBank bank = read_filters(model, "first");
  EXPECT_EQ(bank.layer, "conv1");
  EXPECT_EQ(bank.out_channels, 2);
  EXPECT_EQ(bank.in_channels, 3);
  EXPECT_FLOAT_EQ(bank.max_abs, 4.0f);
  EXPECT_FLOAT_EQ(bank.kernel(1, 2).at<float>(0, 0), -4.0f);
  const cv::Mat tile0 = filter_rgb_tile(bank, 0, 9);  // 3x3 kernel, 3 pixels per weight
  ASSERT_EQ(tile0.size(), cv::Size(9, 9));
  // Centre: red 0.5 + 2/8 = 0.75, the rest grey 0.5.
  EXPECT_EQ(tile0.at<cv::Vec3b>(4, 4), cv::Vec3b(191, 128, 128));
  EXPECT_EQ(tile0.at<cv::Vec3b>(0, 0), cv::Vec3b(128, 128, 128));
  const cv::Mat tile1 = filter_rgb_tile(bank, 1, 3);
  EXPECT_EQ(tile1.at<cv::Vec3b>(0, 0), cv::Vec3b(128, 128, 0));  // blue 0.5 - 4/8 = 0
}

TEST(Filters, DeeperLayersAsChannelGridsAndErrors) {
  LoadedModel model = two_conv_model();
  const FilterBank bank = read_filters(model, "last");
  EXPECT_EQ(bank.layer, "conv2");
  EXPECT_THROW(filter_rgb_tile(bank, 0, 8), UsageError);
  const cv::Mat grid = filter_channel_grid(bank, 2, 10, 64);  // 2 inputs -> 2x1 grid of 10 px + gaps
  EXPECT_EQ(grid.cols, 2 * 11 + 1);
  EXPECT_EQ(grid.rows, 1 * 11 + 1);
  // Weight -1 of a layer with max |w| 1: the diverging map's red end; weight 0: white.
  EXPECT_EQ(grid.at<cv::Vec3b>(5, 5), colormap_rgb(Colormap::diverging, 0.0f));
  EXPECT_EQ(grid.at<cv::Vec3b>(5, 16), colormap_rgb(Colormap::diverging, 0.5f));
  EXPECT_THROW(read_filters(model, "relu1"), UsageError);
  EXPECT_THROW(read_filters(model, "nope"), UsageError);
}

TEST(Activations, MapsStatsAndStrongestChannels) {
  LoadedModel model = two_conv_model();
  cv::Mat img(6, 6, CV_32FC3, cv::Scalar(0.5, 0.0, 0.25));  // R 0.5, B 0.25
  const auto results = run_activations(model, {img}, "conv2");
  ASSERT_EQ(results.size(), 1u);
  const LayerActivations& a = results[0];
  ASSERT_EQ(a.maps.size(), 4u);
  // relu1: ch0 = 2 R = 1 everywhere; ch1 = relu(-4 B at the corner tap) = 0. conv2: (1, 0, -1, 0.5).
  EXPECT_NEAR(a.stats[0].mean, 1.0f, 1e-6);
  EXPECT_NEAR(a.stats[1].mean, 0.0f, 1e-6);
  EXPECT_NEAR(a.stats[2].mean, -1.0f, 1e-6);
  EXPECT_NEAR(a.stats[3].mean, 0.5f, 1e-6);
  EXPECT_TRUE(a.has_negative);
  EXPECT_EQ(strongest_channels(a, 2), (std::vector<int>{0, 3}));
  EXPECT_EQ(a.top.size(), 2u);
  const cv::Mat grid = render_activation_grid(a);
  EXPECT_EQ(grid.type(), CV_8UC3);
  EXPECT_GT(grid.cols, 2 * 64);
  // Non-negative layer: no diverging map.
  EXPECT_FALSE(run_activations(model, {img}, "relu1")[0].has_negative);
}

}  // namespace
}  // namespace cnnvis
