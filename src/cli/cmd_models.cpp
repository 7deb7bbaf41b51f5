// cnnvis models: the models cnnvis knows, and whether their card and weights are present.
#include <cstdio>
#include <filesystem>
#include <memory>

#include "cnnvis/io/model_card.h"
#include "cnnvis/models/registry.h"
#include "commands.h"
#include "common.h"

namespace cnnvis::cli {

void setup_models(CLI::App& app) {
  auto* cmd = app.add_subcommand("models", "list the models and whether their weights are present");
  auto models_dir = std::make_shared<std::string>();
  cmd->add_option("--models-dir", *models_dir, "directory searched first for cards and weights");
  cmd->callback([models_dir] {
    namespace fs = std::filesystem;
    std::printf("%-12s %-8s %-8s %s\n", "model", "card", "weights", "description");
    for (const auto& info : known_models()) {
      std::string card = "built-in", weights = "missing";
      for (const auto& dir : model_search_dirs(*models_dir)) {
        if (card == "built-in" && fs::is_regular_file(fs::path(dir) / (info.name + ".json"))) card = "found";
        if (weights == "missing" && fs::is_regular_file(fs::path(dir) / (info.name + ".safetensors"))) weights = "found";
      }
      std::printf("%-12s %-8s %-8s %s\n", info.name.c_str(), card.c_str(), weights.c_str(), info.description.c_str());
      if (weights == "missing") std::printf("%-12s   create weights: %s\n", "", info.weights_hint.c_str());
    }
  });
}

}  // namespace cnnvis::cli
