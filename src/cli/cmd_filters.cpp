// cnnvis filters: a convolution layer's kernels as pictures (first layer: RGB tiles; deeper: one grid of
// per-input-channel kernels for each filter).
#include <filesystem>
#include <memory>

#include "cnnvis/io/image_io.h"
#include "cnnvis/io/manifest.h"
#include "cnnvis/io/npy.h"
#include "cnnvis/io/render.h"
#include "cnnvis/methods/filters.h"
#include "commands.h"
#include "common.h"

namespace cnnvis::cli {

namespace fs = std::filesystem;

namespace {
struct FiltersCommandOptions {
  ModelOptions model;
  std::string out = "cnnvis-out";
  std::string layer = "first";
  int cell = 48;
  int max_filters = 64;
  int max_inputs = 64;
};

std::string safe_name(std::string text) {
  for (char& c : text)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') c = '_';
  return text;
}
}  // namespace

void setup_filters(CLI::App& app) {
  auto options = std::make_shared<FiltersCommandOptions>();
  auto* cmd = app.add_subcommand("filters", "convolution kernels as pictures (first layer as RGB tiles)");
  add_model_options(cmd, options->model);
  cmd->add_option("-o,--out", options->out, "output directory");
  cmd->add_option("-l,--layer", options->layer, "convolution layer: first, last, a name or an alias");
  cmd->add_option("--cell", options->cell, "pixels per kernel tile")->check(CLI::Range(4, 1024));
  cmd->add_option("--max-filters", options->max_filters, "at most this many filters (output channels)")->check(CLI::Range(1, 100000));
  cmd->add_option("--max-inputs", options->max_inputs, "deeper layers: at most this many input channels per filter")
      ->check(CLI::Range(1, 100000));
  cmd->callback([options] {
    const FiltersCommandOptions& o = *options;
    ModelSession session = open_model(o.model);
    LoadedModel& model = *session.model;
    const FilterBank bank = read_filters(model, o.layer);
    ensure_output_dir(o.out);
    Manifest manifest(o.out, "filters");
    describe_run(manifest, session, {{"layer", o.layer}, {"cell", o.cell}, {"max_filters", o.max_filters}});
    ManifestEntry entry;
    entry.input = bank.layer;
    const int shown = std::min(bank.out_channels, o.max_filters);
    std::vector<SheetCell> cells;
    const bool rgb = bank.in_channels == 3;
    for (int f = 0; f < shown; ++f) {
      cells.push_back({rgb ? filter_rgb_tile(bank, f, o.cell) : filter_channel_grid(bank, f, o.cell / 4 + 4, o.max_inputs),
                       std::to_string(f)});
    }
    SheetOptions sheet;
    sheet.title = model.card().name + " " + bank.layer + ": " + std::to_string(bank.out_channels) + " filters " +
                  std::to_string(bank.in_channels) + "x" + std::to_string(bank.kernel_h) + "x" + std::to_string(bank.kernel_w) +
                  (rgb ? " (RGB, grey = 0)" : " (per input channel, blue +, red -)");
    const std::string stem = safe_name(bank.layer) + ".filters";
    write_output_png(manifest, entry, "sheet", stem + ".png", make_contact_sheet(cells, sheet));
    const std::string npy = stem + ".npy";
    write_npy((fs::path(o.out) / npy).string(), bank.weights.data(),
              {bank.out_channels, bank.in_channels, bank.kernel_h, bank.kernel_w});
    entry.outputs.emplace_back("weights", npy);
    entry.extra["layer"] = bank.layer;
    entry.extra["shape"] = {bank.out_channels, bank.in_channels, bank.kernel_h, bank.kernel_w};
    entry.extra["max_abs"] = bank.max_abs;
    entry.extra["shown"] = shown;
    manifest.add(std::move(entry));
    manifest.write();
  });
}

}  // namespace cnnvis::cli
