// Resuming a batch run: the fingerprint of the settings that make a run's outputs, and the earlier
// manifest entries made with the same settings. CLI layer only: no LibTorch here.
#pragma once

#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "cnnvis/io/manifest.h"
#include "options.h"

namespace cnnvis::cli {

// What must be equal for an earlier result to stand: command, tool version, model, weights, device and
// every output-affecting option value of the subcommand (given or default). {"sha256", "fields"}.
nlohmann::json settings_fingerprint(const InputOptions& inputs, Manifest& manifest);

// Earlier entries of this output directory made with the same settings, by key; empty when there is
// no earlier manifest, it is unreadable, or its settings differ (then everything is recomputed).
std::map<std::string, nlohmann::json> resumable_entries(const std::string& out_dir, const nlohmann::json& fingerprint);

}  // namespace cnnvis::cli
