// cnnvis activations: a layer's feature maps for each input as a grid, strongest channels in the manifest.
#include <filesystem>
#include <memory>

#include "cnnvis/io/colormap.h"
#include "cnnvis/io/manifest.h"
#include "cnnvis/io/npy.h"
#include "cnnvis/methods/activations.h"
#include "commands.h"
#include "common.h"

namespace cnnvis::cli {

namespace {
struct ActivationsCommandOptions {
  ModelOptions model;
  InputOptions inputs;
  std::string out = "cnnvis-out";
  std::vector<std::string> layers;
  int top = 8;
  int max_channels = 64;
  int cell = 64;
  bool by_strength = false;
  std::string colormap = "viridis";
  bool npy = false;
};

std::string safe_name(std::string text) {
  for (char& c : text)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') c = '_';
  return text;
}
}  // namespace

void setup_activations(CLI::App& app) {
  auto options = std::make_shared<ActivationsCommandOptions>();
  auto* cmd = app.add_subcommand("activations", "a layer's feature maps as a grid, strongest channels listed");
  add_model_options(cmd, options->model);
  add_input_options(cmd, options->inputs);
  cmd->add_option("-o,--out", options->out, "output directory");
  cmd->add_option("-l,--layer,--layers", options->layers, "layer name(s) or alias(es), comma-separated (default: the card's)")
      ->delimiter(',')
      ->allow_extra_args(false);
  cmd->add_option("--top", options->top, "strongest channels (by mean activation) listed in the manifest")->check(CLI::Range(0, 100000));
  cmd->add_option("--max-channels", options->max_channels, "channels shown in the grid (0 = all)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--cell", options->cell, "pixels per map")->check(CLI::Range(4, 1024));
  cmd->add_flag("--by-strength", options->by_strength, "order the grid by decreasing mean activation");
  cmd->add_option("--colormap", options->colormap, "for non-negative maps (signed maps use the diverging map)");
  cmd->add_flag("--npy", options->npy, "also write the maps as C x h x w .npy");
  cmd->callback([options] {
    ActivationGridOptions grid;
    grid.cell = options->cell;
    grid.max_channels = options->max_channels;
    grid.by_strength = options->by_strength;
    grid.colormap = parse_colormap(options->colormap);
    ModelSession session = open_model(options->model);
    LoadedModel& model = *session.model;
    std::vector<std::string> layers = options->layers;
    if (layers.empty()) layers.push_back(model.card().default_layer);
    for (const auto& layer : layers) model.resolve_layer(layer);  // fail fast on a typo
    ensure_output_dir(options->out);
    Manifest manifest(options->out, "activations");
    describe_run(manifest, session,
                 {{"layers", layers}, {"top", options->top}, {"max_channels", options->max_channels},
                  {"by_strength", options->by_strength}, {"fit", options->inputs.fit}});
    run_batches(options->inputs, model, manifest, [&](std::vector<BatchItem>& batch) {
      std::vector<cv::Mat> inputs;
      for (auto& item : batch) inputs.push_back(item.input);
      for (const auto& layer : layers) {
        const auto results = run_activations(model, inputs, layer);
        for (std::size_t i = 0; i < batch.size(); ++i) {
          const LayerActivations& a = results[i];
          ManifestEntry& entry = *batch[i].entry;
          const std::string tag = safe_name(a.layer);
          write_output_png(manifest, entry, "grid:" + a.layer, batch[i].stem + "." + tag + ".activations.png",
                           render_activation_grid(a, grid));
          if (options->npy) {
            std::vector<float> all;
            for (const cv::Mat& m : a.maps) all.insert(all.end(), m.begin<float>(), m.end<float>());
            const std::string name = batch[i].stem + "." + tag + ".activations.npy";
            write_npy((std::filesystem::path(manifest.out_dir()) / name).string(), all.data(),
                      {static_cast<std::int64_t>(a.maps.size()), a.maps[0].rows, a.maps[0].cols});
            entry.outputs.emplace_back("maps:" + a.layer, name);
          }
          nlohmann::json strongest = nlohmann::json::array();
          for (int c : strongest_channels(a, options->top)) {
            const ChannelStat& s = a.stats[static_cast<std::size_t>(c)];
            strongest.push_back({{"channel", c}, {"mean", s.mean}, {"max", s.max}, {"min", s.min}});
          }
          entry.extra["layers"][a.layer] = {{"channels", a.maps.size()},
                                            {"map_size", {a.maps[0].cols, a.maps[0].rows}},
                                            {"signed", a.has_negative},
                                            {"strongest", strongest}};
          entry.predictions = predictions_json(a.top);
        }
      }
    });
    command_exit_code() = batch_exit_code(manifest);
  });
}

}  // namespace cnnvis::cli
