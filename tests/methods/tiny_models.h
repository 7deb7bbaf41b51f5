// Tiny networks with hand-set weights for tests whose expected values are derived by hand.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "cnnvis/models/layers.h"
#include "cnnvis/models/loaded_model.h"
#include "cnnvis/models/network.h"

namespace cnnvis::testing {

// The card of a hand-built test network: a square input, identity normalisation (mean 0, std 1), so
// the image's values are the network's input.
inline ModelCard identity_card(const std::string& name, int input_size, const std::vector<std::string>& labels) {
  ModelCard card;
  card.name = card.architecture = name;
  card.input_height = card.input_width = input_size;
  card.mean = {0, 0, 0};
  card.std = {1, 1, 1};
  card.labels = labels;
  return card;
}

// conv (1x1, 3 -> 2, layer "conv") -> ReLU ("relu") -> global average pool ("gap") -> flatten -> linear
// (2 -> labels.size(), "fc", no bias), on a square input_size input with identity normalisation (mean 0,
// std 1), so activations are a0 = conv_weight[0..2] . RGB + conv_bias[0], a1 likewise, and
// logits = fc_weight (row-major classes x 2) . GAP(relu(a)). Parameters are frozen; default layer "relu".
inline LoadedModel tiny_conv_gap_model(const std::vector<float>& conv_weight, const std::vector<float>& conv_bias,
                                       const std::vector<float>& fc_weight, int input_size,
                                       const std::vector<std::string>& labels) {
  const auto classes = static_cast<int64_t>(labels.size());
  auto root = std::make_unique<Sequential>("", "Tiny");
  auto* conv = root->add(std::make_unique<Conv2d>("conv", 3, 2, 1));
  root->add(std::make_unique<ReLU>("relu"));
  root->add(std::make_unique<AdaptiveAvgPool2d>("gap", 1));
  root->add(std::make_unique<Flatten>("flatten"));
  auto* fc = root->add(std::make_unique<Linear>("fc", 2, classes));
  conv->weight = at::tensor(conv_weight).view({2, 3, 1, 1});
  conv->bias = at::tensor(conv_bias);
  fc->weight = at::tensor(fc_weight).view({classes, 2});
  fc->bias = at::zeros({classes});
  auto net = std::make_unique<Network>("tiny", std::move(root), static_cast<int>(classes));
  net->set_parameters_trainable(false);
  ModelCard card = identity_card("tiny", input_size, labels);
  card.default_layer = "relu";
  return LoadedModel::from_network(std::move(net), card, "cpu");
}

// conv (1x1, 3 -> 1, weights 1, -1, 0.5, "conv") -> ReLU ("relu1") -> 2x2 max pool ("pool") -> ReLU
// ("relu2") -> flatten -> linear ((input_size / 2)^2 cells -> 2 classes "a", "b", "fc"), identity
// normalisation: the max pool's switches and both ReLUs make the backward rules of guided backprop and
// deconvnet differ in ways a test can derive by hand. fc_weight: row-major 2 x cells. Frozen parameters.
inline LoadedModel tiny_conv_pool_linear_model(int input_size, const std::vector<float>& fc_weight, float conv_bias,
                                               const std::vector<float>& fc_bias) {
  const int cells = (input_size / 2) * (input_size / 2);
  auto root = std::make_unique<Sequential>("", "Tiny");
  auto* conv = root->add(std::make_unique<Conv2d>("conv", 3, 1, 1));
  root->add(std::make_unique<ReLU>("relu1"));
  root->add(std::make_unique<MaxPool2d>("pool", 2, 2));
  root->add(std::make_unique<ReLU>("relu2"));
  root->add(std::make_unique<Flatten>("flatten"));
  auto* fc = root->add(std::make_unique<Linear>("fc", cells, 2));
  conv->weight = at::tensor({1.0f, -1.0f, 0.5f}).view({1, 3, 1, 1});
  conv->bias = at::full({1}, conv_bias);
  fc->weight = at::tensor(fc_weight).view({2, cells});
  fc->bias = at::tensor(fc_bias);
  auto net = std::make_unique<Network>("tiny", std::move(root), 2);
  net->set_parameters_trainable(false);
  const ModelCard card = identity_card("tiny", input_size, {"a", "b"});
  return LoadedModel::from_network(std::move(net), card, "cpu");
}

// global average pool ("gap") -> flatten -> linear (3 -> 2, "fc"): class-0 logit = gain x mean red, class-1
// logit 0, so p(class 0) = sigmoid(gain x mean red). Labels "red", "other"; a square input_size input with
// identity normalisation.
inline LoadedModel red_model(int input_size, float gain) {
  auto root = std::make_unique<Sequential>("", "Red");
  root->add(std::make_unique<AdaptiveAvgPool2d>("gap", 1));
  root->add(std::make_unique<Flatten>("flatten"));
  auto* fc = root->add(std::make_unique<Linear>("fc", 3, 2));
  fc->weight = at::tensor({gain, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f}).view({2, 3});
  fc->bias = at::zeros({2});
  return LoadedModel::from_network(std::make_unique<Network>("red", std::move(root), 2),
                                   identity_card("red", input_size, {"red", "other"}), "cpu");
}

}  // namespace cnnvis::testing
