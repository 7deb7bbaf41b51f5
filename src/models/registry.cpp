#include "cnnvis/models/registry.h"

#include <cstdlib>
#include <filesystem>

#include <unistd.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/core/text.h"
#include "cnnvis/io/idx.h"

namespace cnnvis {

const std::vector<ModelInfo>& known_models() {
  static const std::vector<ModelInfo> models = {
      {"vgg16", "VGG16 (torchvision), 224x224 ImageNet, 1000 classes",
       "/usr/bin/python3 scripts/export_weights.py --model vgg16 --pretrained"},
      {"googlenet", "GoogLeNet / InceptionV1 (torchvision), 224x224 ImageNet, 1000 classes",
       "/usr/bin/python3 scripts/export_weights.py --model googlenet --pretrained"},
      {"fashion_vgg", "small VGG-style net trained by cnnvis on 64x64 Fashion-MNIST canvases, 10 classes",
       "cnnvis train --dataset fashion-mnist"},
      {"inception5h", "InceptionV1 as used by Lucid / the Activation Atlas (mixed3a..mixed5b, LRN), 1008 classes",
       "/usr/bin/python3 scripts/export_inception5h.py --pth inception5h.pth"},
  };
  return models;
}

const ModelInfo& find_model_info(const std::string& name) {
  std::vector<std::string> names;
  for (const auto& info : known_models()) {
    if (info.name == name) return info;
    names.push_back(info.name);
  }
  throw UsageError("unknown model '" + name + "' (known: " + join(names, ", ") + ")");
}

bool is_torchscript_path(const std::string& model) {
  for (const char* suffix : {".pt", ".ts", ".pth", ".torchscript"}) {
    const std::string s(suffix);
    if (model.size() > s.size() && model.compare(model.size() - s.size(), s.size(), s) == 0) return true;
  }
  return false;
}

ModelCard default_model_card(const std::string& name) {
  find_model_info(name);
  ModelCard card;
  card.name = name;
  card.architecture = name;
  card.weights_file = name + ".safetensors";
  if (name == "vgg16") {
    card.default_layer = "features.29";
  } else if (name == "googlenet") {
    card.default_layer = "inception5b";
    card.transform_input = true;
    card.ignore_weight_prefixes = {"aux1.", "aux2."};
  } else if (name == "fashion_vgg") {
    card.input_height = card.input_width = 64;
    card.mean = {0.5f, 0.5f, 0.5f};
    card.std = {0.25f, 0.25f, 0.25f};
    card.labels = fashion_mnist_class_names();
    card.default_layer = "features.17";
  } else if (name == "inception5h") {
    card.input_range = 255.0f;
    card.mean = {117.0f, 117.0f, 117.0f};
    card.std = {1.0f, 1.0f, 1.0f};
    card.default_layer = "mixed4c";
  }
  card.source = "built-in default card";
  return card;
}

namespace {
std::string executable_dir() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  return exe.parent_path().string();
}
}  // namespace

std::vector<std::string> model_search_dirs(const std::string& explicit_dir) {
  std::vector<std::string> dirs;
  if (!explicit_dir.empty()) dirs.push_back(explicit_dir);
  if (const char* env = std::getenv("CNNVIS_MODELS_DIR"); env != nullptr && *env != '\0') dirs.push_back(env);
  const std::string exe_dir = executable_dir();
  if (!exe_dir.empty()) {
    dirs.push_back((std::filesystem::path(exe_dir) / ".." / "models").lexically_normal().string());
  }
  dirs.push_back("models");
  return dirs;
}

std::string weights_creation_command(const std::string& name, const std::string& dir) {
  if (name == "fashion_vgg") return "cnnvis train --dataset fashion-mnist --out " + dir + "/fashion_vgg.safetensors";
  if (name == "inception5h")
    return "/usr/bin/python3 scripts/export_inception5h.py --pth inception5h.pth --out " + dir +
           " (inception5h.pth: the lucent project's InceptionV1 state dict, downloaded once by hand)";
  return "/usr/bin/python3 scripts/export_weights.py --model " + name + " --pretrained --out " + dir +
         " (needs internet once; --random --seed 0 instead of --pretrained makes offline random weights)";
}

}  // namespace cnnvis
