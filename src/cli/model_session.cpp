#include "model_session.h"

#include <chrono>

#include <spdlog/spdlog.h>

#include "progress.h"

#ifndef CNNVIS_VERSION
#define CNNVIS_VERSION "dev"
#endif

namespace cnnvis::cli {

ModelSession open_model(const ModelOptions& options, bool load_weights) {
  const GlobalOptions& global = global_options();
  ModelSession session;
  session.runtime = configure_runtime({global.device, global.threads, !global.fast, !global.native_kernels});
  ModelLoadOptions load;
  load.model = options.model;
  load.weights = options.weights;
  load.card = options.card;
  load.models_dir = options.models_dir;
  load.device = session.runtime.device;
  load.strict = !options.lenient;
  load.load_weights = load_weights;
  const auto start = std::chrono::steady_clock::now();
  session.model = std::make_unique<LoadedModel>(LoadedModel::load(load));
  spdlog::info("model {} on {} ({} threads){} in {:.0f} ms", options.model, session.runtime.device,
               session.runtime.threads,
               session.model->weights_path().empty() ? "" : ", weights " + session.model->weights_path(),
               elapsed_ms(start));
  return session;
}

void describe_run(Manifest& manifest, const ModelSession& session, const nlohmann::json& options) {
  auto& h = manifest.header();
  h["tool"] = "cnnvis";
  h["version"] = CNNVIS_VERSION;
  h["libtorch"] = session.runtime.libtorch_version;
  h["device"] = session.runtime.device;
  h["threads"] = session.runtime.threads;
  h["deterministic"] = session.runtime.deterministic;
  h["cpu_convolutions"] = session.runtime.cpu_convolutions;
  if (session.model) {
    h["model"] = session.model->card().name;
    h["model_card"] = session.model->card().card_path;
    h["weights"] = session.model->weights_path();
    h["weights_sha256"] = session.model->weights_sha256();
  }
  h["arguments"] = global_options().argv;
  h["options"] = options;
}

}  // namespace cnnvis::cli
