// cnnvis activation-max: images that maximise units of a network (feature visualisation), a layer sheet
// of several layers laid out by depth, and octave zoom movies.
#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <set>

#include <opencv2/imgproc.hpp>
#include <spdlog/spdlog.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/core/text.h"
#include "cnnvis/io/image_io.h"
#include "cnnvis/io/manifest.h"
#include "cnnvis/io/npy.h"
#include "cnnvis/io/render.h"
#include "cnnvis/methods/activation_max.h"
#include "cnnvis/methods/target.h"
#include "cnnvis/io/gif.h"
#include "commands.h"
#include "common.h"

namespace cnnvis::cli {

namespace fs = std::filesystem;

namespace {

struct ActivationMaxCommandOptions {
  ModelOptions model;
  std::string out = "cnnvis-out";
  std::vector<std::string> layers;
  std::vector<int> channels;
  std::vector<std::string> neurons;
  std::vector<std::string> classes;
  int random = 0;
  bool deepdream = false;
  std::string direction;
  float cosine_power = 0.0f;
  int steps = 512;
  int size = 128;
  float lr = 0.05f;
  std::string param = "fourier";
  bool decorrelate = true;
  std::uint64_t seed = 0;
  bool no_transforms = false;
  int redirect_steps = 16;
  float l2 = 0, tv = 0, blur = 0;
  int copies = 1;
  float diversity = 0;
  int batch = 16;
  int cell = 160;
  // octave zoom
  bool zoom = false;
  int zoom_start = 64;
  float octave_scale = 1.3f;
  int octave_steps = 48;
  int zoom_frames = 24;
  float zoom_scale = 1.05f;
  int zoom_steps = 16;
  int cycle = 0;
  int gif_delay = 8;
};

cv::Mat to_rgb8(const cv::Mat& rgb01) {
  cv::Mat out;
  rgb01.convertTo(out, CV_8UC3, 255.0);
  return out;
}

std::string safe_name(std::string text) {
  for (char& c : text)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') c = '_';
  return text;
}

// "C,X,Y" or "C" (the centre).
Objective objective(ObjectiveKind kind, const std::string& layer, int channel) {
  Objective out;
  out.kind = kind;
  out.layer = layer;
  out.channel = channel;
  return out;
}

Objective parse_neuron(const std::string& layer, const std::string& text) {
  const auto parts = split(text, ',');
  Objective o;
  o.kind = ObjectiveKind::neuron;
  o.layer = layer;
  try {
    if (parts.size() != 1 && parts.size() != 3) throw std::invalid_argument("count");
    o.channel = std::stoi(parts[0]);
    if (parts.size() == 3) {
      o.x = std::stoi(parts[1]);
      o.y = std::stoi(parts[2]);
      if (o.x < 0 || o.y < 0) throw std::invalid_argument("negative");
    }
  } catch (const std::exception&) {
    throw UsageError("--neuron '" + text + "' is not C or C,X,Y (channel, column, row)");
  }
  return o;
}

struct Unit {
  Objective objective;
  int depth = 0;  // position of the layer in the network (sheet rows)
};

std::vector<Unit> choose_units(const ActivationMaxCommandOptions& o, const LoadedModel& model) {
  const int kinds = (!o.channels.empty()) + (!o.neurons.empty()) + (o.random > 0) + o.deepdream + (!o.direction.empty());
  if (kinds + (!o.classes.empty()) == 0)
    throw UsageError("choose what to maximise: --channel, --neuron, --class, --random, --direction or --deepdream");
  if (kinds > 0 && o.layers.empty()) throw UsageError("--layer is required with --channel, --neuron, --random, --direction and --deepdream");
  std::map<std::string, int> depth;
  {
    int i = 0;
    for (const LayerInfo& info : model.layers()) depth.emplace(info.name, i++);
  }
  std::vector<Unit> units;
  std::mt19937_64 rng(o.seed ^ 0x5DEECE66Dull);
  std::vector<std::string> layers = o.layers;
  // Deeper layers lower on the sheet, whatever the order given.
  std::stable_sort(layers.begin(), layers.end(), [&](const std::string& a, const std::string& b) {
    return depth[model.resolve_layer(a)] < depth[model.resolve_layer(b)];
  });
  for (const std::string& layer : layers) {
    const std::string canonical = model.resolve_layer(layer);
    const int d = depth[canonical];
    for (int c : o.channels) units.push_back({objective(ObjectiveKind::channel, layer, c), d});
    for (const auto& n : o.neurons) units.push_back({parse_neuron(layer, n), d});
    if (o.random > 0) {
      const int channels = layer_channels(model, layer);
      std::vector<int> all(static_cast<std::size_t>(channels));
      std::iota(all.begin(), all.end(), 0);
      const int k = std::min(o.random, channels);
      for (int i = 0; i < k; ++i) {
        std::swap(all[static_cast<std::size_t>(i)], all[static_cast<std::size_t>(i + static_cast<int>(rng() % static_cast<std::uint64_t>(channels - i)))]);
        units.push_back({objective(ObjectiveKind::channel, layer, all[static_cast<std::size_t>(i)]), d});
      }
    }
    if (o.deepdream) units.push_back({objective(ObjectiveKind::deepdream, layer, 0), d});
    if (!o.direction.empty()) {
      Objective dir = objective(ObjectiveKind::direction, layer, 0);
      dir.direction = read_npy(o.direction).to_float();
      dir.cosine_power = o.cosine_power;
      units.push_back({dir, d});
    }
  }
  for (const auto& c : o.classes) {
    const TargetSpec t = parse_target(c, model.card(), model.num_classes());
    if (t.top) throw UsageError("--class needs a class index or name, not 'top'");
    units.push_back({objective(ObjectiveKind::class_logit, "", t.index), 1 << 30});
  }
  return units;
}

std::string unit_stem(const Objective& o, const LoadedModel& model) {
  switch (o.kind) {
    case ObjectiveKind::channel: return safe_name(o.layer) + "_c" + std::to_string(o.channel);
    case ObjectiveKind::neuron:
      return safe_name(o.layer) + "_n" + std::to_string(o.channel) + (o.x >= 0 ? "_" + std::to_string(o.x) + "_" + std::to_string(o.y) : "");
    case ObjectiveKind::class_logit: return "class" + std::to_string(o.channel) + "_" + safe_name(model.card().label(o.channel));
    case ObjectiveKind::direction: return safe_name(o.layer) + "_direction";
    case ObjectiveKind::direction_neuron: return safe_name(o.layer) + "_direction_neuron";
    case ObjectiveKind::deepdream: return safe_name(o.layer) + "_deepdream";
  }
  return "unit";
}

nlohmann::json objective_json(const Objective& o, const LoadedModel& model) {
  nlohmann::json j = {{"kind", objective_kind_name(o.kind)}, {"describe", o.describe()}};
  if (o.kind == ObjectiveKind::class_logit) {
    j["class"] = o.channel;
    j["label"] = model.card().label(o.channel);
  } else {
    j["layer"] = o.layer;
    j["canonical_layer"] = model.resolve_layer(o.layer);
    if (o.kind == ObjectiveKind::channel || o.kind == ObjectiveKind::neuron) j["channel"] = o.channel;
    if (o.kind == ObjectiveKind::neuron && o.x >= 0) j["position"] = {o.x, o.y};
  }
  return j;
}

void run_zoom(const ActivationMaxCommandOptions& options, LoadedModel& model, const std::vector<Unit>& units,
              const ActivationMaxOptions& base, Manifest& manifest) {
  OctaveZoomOptions z;
  z.base = base;
  z.start_size = options.zoom_start;
  z.octave_scale = options.octave_scale;
  z.octave_steps = options.octave_steps;
  z.zoom_frames = options.zoom_frames;
  z.zoom_scale = options.zoom_scale;
  z.zoom_steps = options.zoom_steps;
  z.cycle_every = options.cycle;
  std::vector<Objective> objectives;
  for (const Unit& u : units) objectives.push_back(u.objective);
  if (objectives.size() > 1 && options.cycle <= 0) {
    spdlog::warn("zoom follows the first of {} units; add --cycle N to switch units every N zoom frames", objectives.size());
    objectives.resize(1);
  }
  const fs::path frames_dir = fs::path(options.out) / "frames";
  fs::create_directories(frames_dir);
  GifWriter gif((fs::path(options.out) / "zoom.gif").string(), base.width, base.height, options.gif_delay, true);
  std::unique_ptr<Progress> progress;
  z.base.progress = [&](std::size_t done, std::size_t total, std::string_view what) {
    if (what != "frames") return;  // the steps inside one frame
    if (!progress) progress = std::make_unique<Progress>("zoom frames", total);
    progress->update(done);
  };
  run_octave_zoom(model, objectives, z, [&](const ZoomFrame& f) {
    ManifestEntry entry;
    entry.input = objectives[f.objective].describe();
    const std::string name = cv::format("frames/%04d.png", f.index);
    const cv::Mat rgb8 = to_rgb8(f.image);
    write_output_png(manifest, entry, "frame", name, rgb8);
    // Octave frames are smaller: the animation shows them scaled up to the target size.
    cv::Mat full;
    cv::resize(rgb8, full, cv::Size(base.width, base.height), 0, 0, cv::INTER_CUBIC);
    gif.add_frame(full);
    entry.extra["frame"] = f.index;
    entry.extra["stage"] = f.stage;
    entry.extra["objective"] = objective_json(objectives[f.objective], model);
    entry.extra["objective_value"] = f.objective_value;
    entry.extra["size"] = {f.image.cols, f.image.rows};
    manifest.add(std::move(entry));
  });
  gif.close();
  manifest.header()["animation"] = "zoom.gif";
  manifest.header()["frames"] = gif.frames();
  if (progress) progress->finish();
}

}  // namespace

void setup_activation_max(CLI::App& app) {
  auto options = std::make_shared<ActivationMaxCommandOptions>();
  auto* cmd = app.add_subcommand("activation-max", "feature visualisation: images that maximise units (Lucid-style)");
  add_model_options(cmd, options->model);
  cmd->add_option("-o,--out", options->out, "output directory");
  cmd->add_option("-l,--layer,--layers", options->layers, "layer name(s) or alias(es), comma-separated; several make a layer sheet")
      ->delimiter(',')
      ->allow_extra_args(false);
  cmd->add_option("-c,--channel", options->channels, "channel(s) to maximise (mean of the map), comma-separated")
      ->delimiter(',')
      ->allow_extra_args(false);
  cmd->add_option("--neuron", options->neurons, "C,X,Y: one unit at column X, row Y of channel C (C alone: the centre); repeatable")
      ->allow_extra_args(false);
  cmd->add_option("--class", options->classes, "class logit(s) to maximise: index or name; repeatable")->allow_extra_args(false);
  cmd->add_option("--random", options->random, "N random channels of each layer (seeded)")->check(CLI::Range(0, 4096));
  cmd->add_flag("--deepdream", options->deepdream, "maximise the mean squared activation of the whole layer");
  cmd->add_option("--direction", options->direction, ".npy vector with one weight per channel (direction objective)");
  cmd->add_option("--cosine-power", options->cosine_power, "direction objective: weight by max(0.1, cos)^P")->check(CLI::Range(0.0f, 16.0f));
  cmd->add_option("--steps", options->steps, "optimisation steps")->check(CLI::Range(0, 100000));
  cmd->add_option("--size", options->size, "image side in pixels")->check(CLI::Range(8, 4096));
  cmd->add_option("--lr", options->lr, "Adam learning rate")->check(CLI::PositiveNumber);
  cmd->add_option("--param", options->param, "image parameterisation: fourier | pixel")->check(CLI::IsMember({"fourier", "pixel"}));
  cmd->add_flag("--decorrelate,!--no-decorrelate", options->decorrelate, "ImageNet colour decorrelation");
  cmd->add_option("--seed", options->seed, "random seed (same seed, same image)");
  cmd->add_flag("--no-transforms", options->no_transforms, "no random pad/jitter/scale/rotate per step");
  cmd->add_option("--redirect-steps", options->redirect_steps, "steps with redirected ReLU gradients")->check(CLI::NonNegativeNumber);
  cmd->add_option("--l2", options->l2, "weight of the L2 penalty (mean (x - 0.5)^2)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--tv", options->tv, "weight of the total-variation penalty")->check(CLI::NonNegativeNumber);
  cmd->add_option("--blur", options->blur, "weight of the blur penalty")->check(CLI::NonNegativeNumber);
  cmd->add_option("--copies", options->copies, "images per unit")->check(CLI::Range(1, 64));
  cmd->add_option("--diversity", options->diversity, "weight of the diversity term between a unit's copies")->check(CLI::NonNegativeNumber);
  cmd->add_option("--batch", options->batch, "units optimised together per batch")->check(CLI::Range(1, 4096));
  cmd->add_option("--cell", options->cell, "side of a sheet cell in pixels")->check(CLI::Range(16, 2048));
  cmd->add_flag("--zoom", options->zoom, "octave zoom: start small, upscale and optimise, then zoom into the centre");
  cmd->add_option("--zoom-start", options->zoom_start, "zoom: first octave's side")->check(CLI::Range(8, 4096));
  cmd->add_option("--octave-scale", options->octave_scale, "zoom: upscale factor between octaves")->check(CLI::Range(1.01f, 4.0f));
  cmd->add_option("--octave-steps", options->octave_steps, "zoom: steps per octave")->check(CLI::Range(1, 100000));
  cmd->add_option("--zoom-frames", options->zoom_frames, "zoom: frames after reaching --size")->check(CLI::Range(0, 100000));
  cmd->add_option("--zoom-scale", options->zoom_scale, "zoom: magnification per zoom frame")->check(CLI::Range(1.001f, 4.0f));
  cmd->add_option("--zoom-steps", options->zoom_steps, "zoom: steps per zoom frame")->check(CLI::Range(1, 100000));
  cmd->add_option("--cycle", options->cycle, "zoom: switch to the next unit every N zoom frames")->check(CLI::NonNegativeNumber);
  cmd->add_option("--gif-delay", options->gif_delay, "zoom: hundredths of a second per animation frame")->check(CLI::Range(1, 1000));
  cmd->callback([options] {
    const ActivationMaxCommandOptions& o = *options;
    ActivationMaxOptions base;
    base.steps = o.steps;
    base.width = base.height = o.size;
    base.learning_rate = o.lr;
    base.parameterization = parse_parameterization(o.param);
    base.decorrelate = o.decorrelate;
    base.transforms.enabled = !o.no_transforms;
    base.redirect_steps = o.redirect_steps;
    base.l2 = o.l2;
    base.tv = o.tv;
    base.blur = o.blur;
    base.images_per_unit = o.copies;
    base.diversity = o.diversity;
    base.seed = o.seed;
    if (o.zoom && o.zoom_start > o.size) throw UsageError("--zoom-start must not exceed --size");

    ModelSession session = open_model(o.model);
    LoadedModel& model = *session.model;
    const std::vector<Unit> units = choose_units(o, model);

    ensure_output_dir(o.out);
    Manifest manifest(o.out, "activation-max");
    describe_run(manifest, session,
                 {{"steps", o.steps}, {"size", o.size}, {"lr", o.lr}, {"param", o.param}, {"decorrelate", o.decorrelate},
                  {"seed", o.seed}, {"transforms", !o.no_transforms}, {"redirect_steps", o.redirect_steps},
                  {"l2", o.l2}, {"tv", o.tv}, {"blur", o.blur}, {"copies", o.copies}, {"diversity", o.diversity},
                  {"zoom", o.zoom}});
    if (o.zoom) {
      run_zoom(o, model, units, base, manifest);
      manifest.write();
      return;
    }

    // Units in batches (same layer kinds mixed freely); each batch is one optimisation.
    std::vector<SheetCell> cells;
    std::vector<int> cell_depth;
    Progress progress("activation-max", units.size() * static_cast<std::size_t>(o.steps));
    std::size_t done_before = 0;
    for (std::size_t first = 0; first < units.size(); first += static_cast<std::size_t>(o.batch)) {
      const std::size_t last = std::min(units.size(), first + static_cast<std::size_t>(o.batch));
      std::vector<Objective> objectives;
      for (std::size_t i = first; i < last; ++i) objectives.push_back(units[i].objective);
      ActivationMaxOptions run = base;
      // Each batch its own stream, so splitting units into other batch sizes only changes which batch
      // a unit is in, never what the first batch gets.
      run.seed = base.seed + first;
      const std::size_t n = last - first;
      run.progress = [&, n](std::size_t done, std::size_t, std::string_view) { progress.update(done_before + done * n); };
      const auto start = std::chrono::steady_clock::now();
      const auto results = run_activation_max(model, objectives, run);
      const double ms = elapsed_ms(start);
      done_before += n * static_cast<std::size_t>(o.steps);
      for (std::size_t k = 0; k < results.size(); ++k) {
        const ActivationMaxResult& r = results[k];
        const Unit& unit = units[first + k / static_cast<std::size_t>(o.copies)];
        ManifestEntry entry;
        entry.input = r.objective.describe() + (o.copies > 1 ? " #" + std::to_string(r.copy) : "");
        const std::string stem = unit_stem(r.objective, model) + (o.copies > 1 ? "_" + std::to_string(r.copy) : "");
        const cv::Mat rgb8 = to_rgb8(r.image);
        write_output_png(manifest, entry, "image", stem + ".png", rgb8);
        entry.extra["objective"] = objective_json(r.objective, model);
        entry.extra["objective_start"] = r.objective_start;
        entry.extra["objective_final"] = r.objective_final;
        entry.extra["copy"] = r.copy;
        entry.timings_ms.emplace_back("batch_compute", ms);
        manifest.add(std::move(entry));
        cells.push_back({rgb8, r.objective.describe()});
        cell_depth.push_back(unit.depth);
      }
      manifest.write();
    }
    progress.finish();

    if (cells.size() > 1) {
      // The layer sheet: one row per layer (deeper lower), units of a layer across.
      std::vector<SheetCell> laid_out;
      std::size_t columns = 0;
      for (std::size_t i = 0; i < cells.size();) {
        std::size_t j = i;
        while (j < cells.size() && cell_depth[j] == cell_depth[i]) ++j;
        columns = std::max(columns, j - i);
        i = j;
      }
      for (std::size_t i = 0; i < cells.size();) {
        std::size_t j = i;
        while (j < cells.size() && cell_depth[j] == cell_depth[i]) ++j;
        for (std::size_t k = i; k < j; ++k) laid_out.push_back(cells[k]);
        for (std::size_t k = j - i; k < columns; ++k) laid_out.push_back({cv::Mat(), ""});
        i = j;
      }
      SheetOptions sheet;
      sheet.columns = static_cast<int>(columns);
      sheet.cell_width = sheet.cell_height = o.cell;
      sheet.title = model.card().name + ": activation maximisation" + (o.layers.size() > 1 ? " (rows by depth)" : "");
      write_png((fs::path(o.out) / "sheet.png").string(), make_contact_sheet(laid_out, sheet));
      manifest.header()["sheet"] = "sheet.png";
    }
    manifest.write();
  });
}

}  // namespace cnnvis::cli
