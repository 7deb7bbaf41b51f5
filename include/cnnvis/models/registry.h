// The models cnnvis knows natively, and where their cards and weights are found. Torch-free.
#pragma once

#include <string>
#include <vector>

#include "cnnvis/io/model_card.h"

namespace cnnvis {

struct ModelInfo {
  std::string name;
  std::string description;
  std::string weights_hint;  // the command that creates its weights
};

const std::vector<ModelInfo>& known_models();
// Throws UsageError naming the unknown model and listing the known ones.
const ModelInfo& find_model_info(const std::string& name);

// True for a --model value that names a TorchScript file (.pt, .ts, .pth, .torchscript) rather than a
// built-in model.
bool is_torchscript_path(const std::string& model);

// A card with the architecture's built-in facts, used when no card file is found (ImageNet models then
// have no class names; the fashion model has its ten).
ModelCard default_model_card(const std::string& name);

// Directories searched for models/<name>.json and weights, in order: explicit (if not empty), the
// CNNVIS_MODELS_DIR environment variable, <executable dir>/../models, ./models.
std::vector<std::string> model_search_dirs(const std::string& explicit_dir);

// The command that creates the weights of `name` into `dir`, for error messages.
std::string weights_creation_command(const std::string& name, const std::string& dir);

}  // namespace cnnvis
