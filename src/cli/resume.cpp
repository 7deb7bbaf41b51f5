#include "resume.h"

#include <filesystem>
#include <set>
#include <system_error>

#include <spdlog/spdlog.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/core/sha256.h"

namespace cnnvis::cli {

namespace {

// Options that change how a run goes but never what it writes for an input: they stay out of the
// settings fingerprint, so that e.g. a different batch size or shard still resumes.
bool affects_outputs(const std::string& name) {
  // --weights and --models-dir only say where the weights are: their content is in weights_sha256.
  static const std::set<std::string> kNeutral = {"--help", "--out", "--batch-size", "--shard", "--no-resume",
                                                 "--recursive", "--max-pixels", "--weights", "--models-dir"};
  return kNeutral.count(name) == 0;
}

}  // namespace

nlohmann::json settings_fingerprint(const InputOptions& inputs, Manifest& manifest) {
  nlohmann::json fields = nlohmann::json::object();
  const nlohmann::json& h = manifest.header();
  for (const char* key : {"command", "version", "model", "weights_sha256", "device", "deterministic", "cpu_convolutions"}) {
    if (h.contains(key)) fields[key] = h[key];
  }
  nlohmann::json options = nlohmann::json::object();
  if (inputs.command != nullptr) {
    for (const CLI::Option* opt : inputs.command->get_options()) {
      if (!opt->nonpositional()) continue;  // the inputs themselves
      const std::string name = opt->get_name();
      if (!affects_outputs(name)) continue;
      options[name] = opt->count() > 0 ? nlohmann::json(opt->results()) : nlohmann::json(opt->get_default_str());
    }
  } else if (h.contains("options")) {
    options = h["options"];
  }
  fields["options"] = options;
  const std::string text = fields.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return {{"sha256", sha256_hex(text.data(), text.size())}, {"fields", fields}};
}

std::map<std::string, nlohmann::json> resumable_entries(const std::string& out_dir, const nlohmann::json& fingerprint) {
  std::map<std::string, nlohmann::json> out;
  const std::filesystem::path path = std::filesystem::path(out_dir) / "manifest.json";
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return out;
  nlohmann::json previous;
  try {
    previous = read_manifest(path.string());
  } catch (const InputError& e) {
    spdlog::warn("{}; not resuming", e.what());
    return out;
  }
  const nlohmann::json old = previous.contains("fingerprint") && previous["fingerprint"].is_object()
                                 ? previous["fingerprint"].value("sha256", std::string()) : std::string();
  if (old != fingerprint["sha256"].get<std::string>()) {
    spdlog::info("{}: earlier results were made with other settings; computing every input", path.string());
    return out;
  }
  for (const auto& e : previous["inputs"]) {
    if (e.is_object() && e.contains("key") && e["key"].is_string()) out.emplace(e["key"].get<std::string>(), e);
  }
  return out;
}

}  // namespace cnnvis::cli
