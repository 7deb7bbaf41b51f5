#include "cnnvis/models/loaded_model.h"

#include <chrono>
#include <filesystem>
#include <fstream>

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/core/sha256.h"
#include "cnnvis/io/safetensors.h"
#include "cnnvis/models/architectures.h"
#include "cnnvis/models/inception5h.h"
#include "cnnvis/models/registry.h"
#include "cnnvis/models/torchscript.h"
#include "cnnvis/models/weights.h"

namespace cnnvis {

namespace fs = std::filesystem;

struct LoadedModel::Impl {
  ModelCard card;
  std::unique_ptr<Network> network;
  std::string weights_path;
  std::string weights_sha256;
  std::string device;
};

namespace {

std::unique_ptr<Network> build_network(const ModelCard& card) {
  const int classes = card.labels.empty() ? 0 : static_cast<int>(card.labels.size());
  if (card.architecture == "vgg16") return build_vgg16(classes ? classes : 1000);
  if (card.architecture == "googlenet") return build_googlenet(card.transform_input, classes ? classes : 1000);
  if (card.architecture == "fashion_vgg") return build_fashion_vgg(classes ? classes : 10);
  if (card.architecture == "inception5h") return build_inception5h(classes ? classes : 1008);
  throw ModelCardError(card.card_path + ": unknown architecture '" + card.architecture +
                       "' (known: vgg16, googlenet, fashion_vgg)");
}

ModelCard find_card(const ModelLoadOptions& options) {
  if (!options.card.empty()) return read_model_card(options.card);
  if (!options.weights.empty()) {
    fs::path beside = fs::path(options.weights).replace_extension(".json");
    if (fs::is_regular_file(beside)) return read_model_card(beside.string());
  }
  for (const auto& dir : model_search_dirs(options.models_dir)) {
    fs::path path = fs::path(dir) / (options.model + ".json");
    if (fs::is_regular_file(path)) return read_model_card(path.string());
  }
  spdlog::debug("no card file for {}; using the built-in card", options.model);
  return default_model_card(options.model);
}

std::string find_weights(const ModelLoadOptions& options, const ModelCard& card) {
  if (!options.weights.empty()) {
    if (!fs::exists(options.weights)) throw WeightsError(options.weights + ": weights file not found");
    return options.weights;
  }
  std::vector<std::string> tried;
  if (!card.card_path.empty()) {
    const std::string beside = card.weights_path();
    if (fs::is_regular_file(beside)) return beside;
    tried.push_back(beside);
  }
  for (const auto& dir : model_search_dirs(options.models_dir)) {
    fs::path path = fs::path(dir) / (card.weights_file.empty() ? options.model + ".safetensors" : card.weights_file);
    if (fs::is_regular_file(path)) return path.string();
    tried.push_back(path.string());
  }
  const std::string target_dir = card.card_path.empty() ? std::string("models")
                                                        : fs::path(card.card_path).parent_path().string();
  throw WeightsError((tried.empty() ? options.model : tried.front()) + ": weights for model " + options.model +
                     " not found (looked in " + std::to_string(tried.size()) + " places). Create them with: " +
                     weights_creation_command(options.model, target_dir.empty() ? "." : target_dir) +
                     ", or pass --weights FILE");
}

// The sha256 of a large weights file costs a second or more; remember it next to the file, keyed by
// size and modification time, when that directory is writable.
std::string cached_sha256(const std::string& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  const auto mtime = fs::last_write_time(path, ec).time_since_epoch().count();
  const std::string key = std::to_string(size) + " " + std::to_string(mtime);
  const std::string cache = path + ".sha256";
  {
    std::ifstream in(cache);
    std::string digest, cached_key;
    if (in >> digest && std::getline(in >> std::ws, cached_key) && cached_key == key && digest.size() == 64) {
      return digest;
    }
  }
  const std::string digest = sha256_file(path);
  std::ofstream out(cache);
  if (out) out << digest << " " << key << "\n";
  return digest;
}

}  // namespace

LoadedModel::LoadedModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LoadedModel::LoadedModel(LoadedModel&&) noexcept = default;
LoadedModel& LoadedModel::operator=(LoadedModel&&) noexcept = default;
LoadedModel::~LoadedModel() = default;

namespace {

// The card of a TorchScript file: --card, else FILE.json beside it, else torchvision's ImageNet
// preprocessing with classes named by index.
ModelCard torchscript_card(const ModelLoadOptions& options) {
  ModelCard card;
  std::string path = options.card;
  if (path.empty()) {
    const fs::path beside = fs::path(options.model).replace_extension(".json");
    if (fs::is_regular_file(beside)) path = beside.string();
  }
  if (!path.empty()) {
    card = read_model_card(path);
    if (card.architecture != "torchscript") {
      throw ModelCardError(path + ": card is for architecture '" + card.architecture + "', not a TorchScript "
                           "model (a card beside FILE.pt says \"architecture\": \"torchscript\")");
    }
    return card;
  }
  card.name = fs::path(options.model).stem().string();
  card.architecture = "torchscript";
  card.weights_file = fs::path(options.model).filename().string();
  spdlog::debug("{}: no card beside it; ImageNet preprocessing (224 x 224, RGB, torchvision mean/std)", options.model);
  return card;
}

// The card may pin the weights' sha256; another file is used, with a warning (a fine-tuned copy, say).
void warn_if_weights_differ_from_card(const ModelCard& card, const std::string& weights_path,
                                      const std::string& weights_sha256) {
  if (card.weights_sha256.empty() || card.weights_sha256 == weights_sha256) return;
  spdlog::warn("{}: sha256 {} differs from the card's {} ({}); using it anyway", weights_path,
               weights_sha256.substr(0, 12), card.weights_sha256.substr(0, 12),
               card.card_path.empty() ? "built-in card" : card.card_path);
}

// Explanations never need weight gradients; then the parameters go to the run's device.
void freeze_on_device(Network& network, const ModelLoadOptions& options) {
  network.set_parameters_trainable(false);
  try {
    network.to(at::Device(options.device));
  } catch (const c10::Error& e) {
    throw DeviceError("cannot move model " + options.model + " to " + options.device + ": " + e.what_without_backtrace());
  }
}

}  // namespace

LoadedModel LoadedModel::load_torchscript_model(const ModelLoadOptions& options) {
  if (!options.weights.empty()) {
    throw UsageError("--weights does not apply to TorchScript model " + options.model + ": its weights are inside it");
  }
  if (!fs::is_regular_file(options.model)) throw WeightsError(options.model + ": TorchScript file not found");
  auto impl = std::make_unique<Impl>();
  impl->card = torchscript_card(options);
  impl->device = options.device;
  const auto start = std::chrono::steady_clock::now();
  TorchScriptNetwork loaded = load_torchscript(options.model, impl->card.input_height, impl->card.input_width);
  spdlog::debug("{}: loaded and probed in {:.0f} ms", options.model,
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  if (!impl->card.labels.empty() && static_cast<int>(impl->card.labels.size()) != loaded.num_classes) {
    throw ModelCardError(impl->card.card_path + ": the card names " + std::to_string(impl->card.labels.size()) +
                         " classes, the model " + options.model + " has " + std::to_string(loaded.num_classes));
  }
  if (impl->card.default_layer.empty()) impl->card.default_layer = loaded.default_layer;
  impl->network = std::move(loaded.network);
  impl->weights_path = options.model;
  impl->weights_sha256 = cached_sha256(options.model);
  warn_if_weights_differ_from_card(impl->card, impl->weights_path, impl->weights_sha256);
  freeze_on_device(*impl->network, options);
  return LoadedModel(std::move(impl));
}

LoadedModel LoadedModel::load(const ModelLoadOptions& options) {
  if (is_torchscript_path(options.model)) return load_torchscript_model(options);
  find_model_info(options.model);
  auto impl = std::make_unique<Impl>();
  impl->card = find_card(options);
  if (impl->card.architecture != options.model && impl->card.name != options.model) {
    throw ModelCardError(impl->card.card_path + ": card is for model '" + impl->card.name + "' (architecture " +
                         impl->card.architecture + "), not '" + options.model + "'");
  }
  impl->network = build_network(impl->card);
  impl->device = options.device;
  if (!options.load_weights) impl->network->initialize_parameters();
  if (options.load_weights) {
    impl->weights_path = find_weights(options, impl->card);
    const auto start = std::chrono::steady_clock::now();
    SafetensorsFile file = SafetensorsFile::open(impl->weights_path);
    WeightLoadOptions load_options;
    load_options.strict = options.strict;
    load_options.ignore_prefixes = impl->card.ignore_weight_prefixes;
    load_weights(*impl->network, file, load_options);
    const auto loaded = std::chrono::steady_clock::now();
    impl->weights_sha256 = cached_sha256(impl->weights_path);
    spdlog::debug("{}: loaded in {:.0f} ms, sha256 in {:.0f} ms", impl->weights_path,
                  std::chrono::duration<double, std::milli>(loaded - start).count(),
                  std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - loaded).count());
    warn_if_weights_differ_from_card(impl->card, impl->weights_path, impl->weights_sha256);
  }
  freeze_on_device(*impl->network, options);
  return LoadedModel(std::move(impl));
}

LoadedModel LoadedModel::from_network(std::unique_ptr<Network> network, ModelCard card, const std::string& device) {
  auto impl = std::make_unique<Impl>();
  impl->card = std::move(card);
  impl->network = std::move(network);
  impl->device = device;
  impl->network->set_parameters_trainable(false);
  impl->network->to(at::Device(device));
  return LoadedModel(std::move(impl));
}

const ModelCard& LoadedModel::card() const { return impl_->card; }
const std::string& LoadedModel::weights_path() const { return impl_->weights_path; }
const std::string& LoadedModel::weights_sha256() const { return impl_->weights_sha256; }
const std::string& LoadedModel::device() const { return impl_->device; }
int LoadedModel::num_classes() const { return impl_->network->num_classes(); }
Network& LoadedModel::network() { return *impl_->network; }
const Network& LoadedModel::network() const { return *impl_->network; }

std::string LoadedModel::resolve_layer(const std::string& name_or_alias) const {
  return impl_->network->resolve_layer(name_or_alias);
}

std::vector<LayerInfo> LoadedModel::layers() const {
  return impl_->network->describe_layers(impl_->card.input_height, impl_->card.input_width);
}

std::vector<std::pair<std::string, std::string>> LoadedModel::aliases() const {
  const auto& map = impl_->network->aliases();
  return {map.begin(), map.end()};
}

}  // namespace cnnvis
