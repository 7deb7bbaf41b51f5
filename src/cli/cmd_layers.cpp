// cnnvis layers: every addressable layer with its type, output shape and receptive field.
#include <cstdio>
#include <iostream>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "common.h"

namespace cnnvis::cli {

namespace {
struct LayersOptions {
  ModelOptions model;
  bool json = false;
  bool with_weights = false;
};

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::ostringstream out;
  for (std::size_t i = 0; i < shape.size(); ++i) out << (i ? "x" : "") << shape[i];
  return out.str();
}
}  // namespace

void setup_layers(CLI::App& app) {
  auto options = std::make_shared<LayersOptions>();
  auto* cmd = app.add_subcommand("layers", "list a model's layers: name, type, output shape, receptive field");
  add_model_options(cmd, options->model);
  cmd->add_flag("--json", options->json, "print JSON instead of a table");
  cmd->add_flag("--with-weights", options->with_weights, "load the weights too (checks the file)");
  cmd->callback([options] {
    ModelSession session = open_model(options->model, options->with_weights);
    const auto layers = session.model->layers();
    const auto aliases = session.model->aliases();
    auto aliases_of = [&](const std::string& name) {
      std::string out;
      for (const auto& [alias, target] : aliases) {
        if (target == name) out += (out.empty() ? "" : ",") + alias;
      }
      return out;
    };
    if (options->json) {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& l : layers) {
        out.push_back({{"name", l.name}, {"type", l.type}, {"description", l.description},
                       {"output_shape", l.output_shape}, {"depth", l.depth}, {"parameters", l.parameters},
                       {"aliases", aliases_of(l.name)},
                       {"receptive_field", {{"size", l.field.size}, {"stride", l.field.stride}, {"start", l.field.start}}}});
      }
      std::cout << out.dump(2) << "\n";
      return;
    }
    std::printf("%-36s %-18s %-16s %8s %7s %12s  %s\n", "layer", "type", "output", "rf_size", "rf_step", "params",
                "aliases");
    for (const auto& l : layers) {
      const std::string name = std::string(2 * l.depth, ' ') + l.name;
      std::printf("%-36s %-18s %-16s %8.0f %7.0f %12lld  %s\n", name.c_str(), l.type.c_str(),
                  shape_text(l.output_shape).c_str(), l.field.size, l.field.stride,
                  static_cast<long long>(l.parameters), aliases_of(l.name).c_str());
    }
  });
}

}  // namespace cnnvis::cli
