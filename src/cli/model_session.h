// Opening the model a subcommand runs (runtime set-up from the global options, then loading) and the
// run fields of its manifest. CLI layer only: no LibTorch here.
#pragma once

#include <memory>

#include <nlohmann/json.hpp>

#include "cnnvis/core/runtime.h"
#include "cnnvis/io/manifest.h"
#include "cnnvis/models/loaded_model.h"
#include "options.h"

namespace cnnvis::cli {

// Configures threads/device from the global options and loads the model.
struct ModelSession {
  RuntimeInfo runtime;
  std::unique_ptr<LoadedModel> model;
};
ModelSession open_model(const ModelOptions& options, bool load_weights = true);

// Fills the manifest's run fields (tool, versions, device, model, weights, arguments).
void describe_run(Manifest& manifest, const ModelSession& session, const nlohmann::json& options);

}  // namespace cnnvis::cli
