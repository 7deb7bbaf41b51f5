// A model ready to use: card + native network + weights on a device. Torch-free interface (pimpl), so
// the CLI can hold one without including LibTorch.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cnnvis/io/model_card.h"
#include "cnnvis/models/layer_info.h"

namespace cnnvis {

class Network;

struct ModelLoadOptions {
  std::string model;        // vgg16 | googlenet | fashion_vgg | inception5h, or a TorchScript FILE.pt
  std::string weights;      // explicit .safetensors path; empty: from the card / models dir
  std::string card;         // explicit card path; empty: next to the weights, then models dir, then built in
  std::string models_dir;   // extra directory to search first
  std::string device = "cpu";  // resolved device ("cpu", "cuda:0"), see configure_runtime
  bool strict = true;
  bool load_weights = true;  // false: architecture only (for `cnnvis layers`), initial random values
};

struct Prediction {
  int index = 0;
  std::string label;
  float logit = 0;
  float probability = 0;
};

class LoadedModel {
 public:
  // Throws UsageError (unknown model), ModelCardError, WeightsError (missing file: the message gives
  // the exact command that creates it), DeviceError.
  static LoadedModel load(const ModelLoadOptions& options);
  // A model around an existing network (tests, training).
  static LoadedModel from_network(std::unique_ptr<Network> network, ModelCard card, const std::string& device);

  LoadedModel(LoadedModel&&) noexcept;
  LoadedModel& operator=(LoadedModel&&) noexcept;
  ~LoadedModel();

  const ModelCard& card() const;
  const std::string& weights_path() const;    // empty when no weights were loaded
  const std::string& weights_sha256() const;  // of the loaded file
  const std::string& device() const;
  int num_classes() const;

  // Canonical layer name for a name or alias; UsageError listing valid names otherwise.
  std::string resolve_layer(const std::string& name_or_alias) const;
  std::vector<LayerInfo> layers() const;  // at the card's input size
  std::vector<std::pair<std::string, std::string>> aliases() const;

  Network& network();
  const Network& network() const;

 private:
  struct Impl;
  static LoadedModel load_torchscript_model(const ModelLoadOptions& options);
  explicit LoadedModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cnnvis
