// cnnvis atlas: an activation atlas of a layer. Collects activation vectors over the inputs (streamed to
// the output directory, so a collection can also be sharded over machines with --shard and
// --collect-only, and rendered later from the parts with --from), lays them out with t-SNE, bins them on
// grids and draws each cell's feature visualisation.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <memory>
#include <sstream>

#include <opencv2/core.hpp>
#include <spdlog/spdlog.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/core/runtime.h"
#include "cnnvis/core/text.h"
#include "cnnvis/io/atlas_store.h"
#include "cnnvis/io/embedding_plot.h"
#include "cnnvis/io/files.h"
#include "cnnvis/io/html_index.h"
#include "cnnvis/io/image_io.h"
#include "cnnvis/io/manifest.h"
#include "cnnvis/io/npy.h"
#include "cnnvis/methods/activation_atlas.h"
#include "cnnvis/methods/atlas_collect.h"
#include "commands.h"
#include "common.h"

namespace cnnvis::cli {

namespace fs = std::filesystem;

namespace {

struct AtlasCommandOptions {
  ModelOptions model;
  InputOptions inputs;
  std::string out = "cnnvis-out";
  std::string layer;
  int samples_per_image = 1;
  int border = 1;
  std::uint64_t seed = 0;
  std::string attribution = "auto";
  bool collect_only = false;
  std::vector<std::string> from;
  std::string grids;
  int min_count = 3;
  std::string class_filter;
  std::int64_t class_top = 2000;
  std::string layout;
  std::int64_t max_points = 0;
  double perplexity = 50;
  int iterations = 1000;
  bool no_icons = false;
  int icon_size = 80;
  int icon_steps = 256;
  int icon_attempts = 1;
  int icon_batch = 32;
  bool no_whiten = false;
  float cosine_power = 2.0f;
  int cell_size = 0;
};

std::vector<int> parse_grids(const std::string& text) {
  std::vector<int> out;
  for (const std::string& part : split(text, ',')) {
    try {
      std::size_t used = 0;
      const int g = std::stoi(part, &used);
      if (used != part.size() || g < 1 || g > 1000) throw 0;
      out.push_back(g);
    } catch (...) {
      throw UsageError("--grid: '" + part + "' is not a grid size between 1 and 1000");
    }
  }
  if (out.empty()) throw UsageError("--grid needs at least one size");
  return out;
}

// A class index or a (case-insensitive) label of the collection.
int parse_class(const std::string& text, const AtlasCollectionInfo& info) {
  try {
    std::size_t used = 0;
    const int k = std::stoi(text, &used);
    if (used == text.size()) {
      if (k < 0 || k >= info.num_classes) {
        throw UsageError("class " + text + " is out of range (model has classes 0.." + std::to_string(info.num_classes - 1) + ")");
      }
      return k;
    }
  } catch (const UsageError&) {
    throw;
  } catch (...) {
  }
  for (std::size_t i = 0; i < info.labels.size(); ++i)
    if (to_lower(info.labels[i]) == to_lower(text)) return static_cast<int>(i);
  throw UsageError("unknown class '" + text + "' for model " + info.model);
}

// Collects the samples of the inputs into o.out (the collection files and manifest.json).
void collect(const AtlasCommandOptions& o, ModelSession& session, Manifest& manifest) {
  LoadedModel& model = *session.model;
  AtlasCollectOptions c;
  c.layer = model.resolve_layer(o.layer.empty() ? model.card().default_layer : o.layer);
  c.samples_per_image = o.samples_per_image;
  c.border = o.border;
  c.seed = o.seed;
  c.attribution = parse_atlas_attribution(o.attribution, model.num_classes());
  AtlasCollectionInfo info;
  info.model = model.card().name;
  info.layer = c.layer;
  info.weights_sha256 = model.weights_sha256();
  info.channels = layer_channels(model, c.layer);
  info.num_classes = model.num_classes();
  info.attribution_classes = c.attribution.classes_per_sample(model.num_classes());
  for (int i = 0; i < model.num_classes(); ++i) info.labels.push_back(model.card().label(i));
  info.options = {{"samples_per_image", c.samples_per_image}, {"border", c.border}, {"seed", c.seed},
                  {"attribution", o.attribution}};
  AtlasCollectionWriter writer(o.out, info);
  describe_run(manifest, session, {{"layer", c.layer}, {"fit", o.inputs.fit}, {"collection", info.options}});
  auto process = [&](std::vector<BatchItem>& batch) {
    std::vector<cv::Mat> inputs;
    std::vector<std::string> keys;
    for (auto& item : batch) {
      inputs.push_back(item.input);
      keys.push_back(item.key);
    }
    const auto samples = collect_atlas_samples(model, inputs, keys, c);
    for (std::size_t i = 0; i < batch.size(); ++i) {
      nlohmann::json rows = nlohmann::json::array();
      for (std::size_t s = 0; s < samples[i].points.size(); ++s) {
        const AtlasPoint& p = samples[i].points[s];
        AtlasSample sample{batch[i].key, batch[i].path, static_cast<int>(s), p.x, p.y, samples[i].top.index};
        rows.push_back(writer.rows());
        writer.add(sample, p.activation.data(), p.attr_classes.data(), p.attr_values.data());
      }
      batch[i].entry->predictions = predictions_json({samples[i].top});
      batch[i].entry->extra["atlas_rows"] = rows;
    }
  };
  run_batches(o.inputs, model, manifest, process);
  nlohmann::json extra = {{"inputs_ok", manifest.entries().size() - manifest.error_count()},
                          {"inputs_failed", manifest.error_count()}};
  if (manifest.header().contains("shard")) extra["shard"] = manifest.header()["shard"];
  writer.finish(extra);
  manifest.header()["atlas_collection"] = {{"rows", writer.rows()}, {"channels", info.channels},
                                          {"attribution_classes", info.attribution_classes}};
  spdlog::info("atlas: collected {} activation vectors of {} ({} channels) from {} inputs", writer.rows(), c.layer,
               info.channels, manifest.entries().size() - manifest.error_count());
}

cv::Mat icon_to_rgb8(const cv::Mat& icon) {
  cv::Mat out;
  icon.convertTo(out, CV_8UC3, 255.0);
  return out;
}

// Writes the layout, every grid's pictures, cells and icons, and atlas.json; returns the header fields.
nlohmann::json write_atlas(const AtlasCommandOptions& o, const AtlasCollection& c, const ActivationAtlasResult& r,
                           int class_filter) {
  const fs::path out(o.out);
  const auto& labels = c.info.labels;
  auto label_of = [&](int k) { return k >= 0 && k < static_cast<int>(labels.size()) ? labels[k] : std::to_string(k); };
  std::ostringstream csv;
  csv << "row,key,path,sample,x,y,u,v,predicted,top_attributed\n";
  char buf[96];
  for (std::size_t i = 0; i < r.rows.size(); ++i) {
    const std::int64_t row = r.rows[i];
    const AtlasSample& s = c.samples[row];
    std::snprintf(buf, sizeof(buf), "%.7g,%.7g,%.6f,%.6f", r.layout[2 * i], r.layout[2 * i + 1], r.layout01[2 * i],
                  r.layout01[2 * i + 1]);
    csv << row << ',' << csv_field(s.key) << ',' << csv_field(s.path) << ',' << s.sample << ',' << buf << ','
        << s.predicted << ',' << top_attributed_class(c, row) << '\n';
  }
  write_text_atomically((out / "atlas_layout.csv").string(), csv.str());
  write_npy((out / "atlas_layout.npy").string(), r.layout.data(), {static_cast<std::int64_t>(r.rows.size()), 2});

  // The layout as a scatter plot coloured by top attributed class (or predicted class without attribution).
  std::vector<int> point_labels;
  for (std::int64_t row : r.rows)
    point_labels.push_back(c.info.attribution_classes > 0 ? top_attributed_class(c, row) : c.samples[row].predicted);
  ScatterOptions scatter;
  scatter.title = "atlas layout of " + c.info.layer + ", " + std::to_string(r.rows.size()) + " samples";
  write_png((out / "atlas_layout.png").string(), render_scatter(r.layout01, point_labels, labels, scatter));

  nlohmann::json pictures = {{"layout", "atlas_layout.png"}};
  nlohmann::json grids = nlohmann::json::array();
  for (const ActivationAtlasGrid& g : r.grids) {
    const std::string name = "atlas_" + std::to_string(g.grid);
    const fs::path icon_dir = out / "atlas_icons" / std::to_string(g.grid);
    if (!g.icons.empty()) {
      std::error_code ec;
      fs::create_directories(icon_dir, ec);
      if (ec) throw OutputError(icon_dir.string() + ": cannot create directory (" + ec.message() + ")");
    }
    nlohmann::json cells = nlohmann::json::array();
    std::vector<int> cell_index;
    std::vector<cv::Mat> icons;
    std::vector<std::string> captions;
    for (std::size_t i = 0; i < g.cells.size(); ++i) {
      const AtlasCellSummary& cell = g.cells[i];
      nlohmann::json j = {{"column", cell.column}, {"row", cell.row}, {"count", cell.count}, {"x", cell.x}, {"y", cell.y}};
      nlohmann::json classes = nlohmann::json::array();
      for (const auto& [k, v] : cell.top_classes) classes.push_back({{"index", k}, {"label", label_of(k)}, {"attribution", v}});
      j["top_classes"] = classes;
      nlohmann::json examples = nlohmann::json::array();
      for (std::size_t m = 0; m < cell.members.size() && m < 8; ++m) {
        const AtlasSample& s = c.samples[r.rows[cell.members[m]]];
        examples.push_back({{"path", s.path}, {"x", s.x}, {"y", s.y}});
      }
      j["examples"] = examples;
      if (!g.icons.empty()) {
        const std::string icon_name = cv::format("cell_%03d_%03d.png", cell.row, cell.column);
        const cv::Mat rgb = icon_to_rgb8(g.icons[i]);
        write_png((icon_dir / icon_name).string(), rgb);
        j["icon"] = (fs::path("atlas_icons") / std::to_string(g.grid) / icon_name).generic_string();
        j["icon_objective"] = g.icon_objective[i];
        icons.push_back(rgb);
      }
      cell_index.push_back(cell.row * g.grid + cell.column);
      captions.push_back(cell.top_classes.empty() ? std::string() : label_of(cell.top_classes.front().first));
      cells.push_back(std::move(j));
    }
    nlohmann::json doc = {{"grid", g.grid},
                          {"layer", c.info.layer},
                          {"model", c.info.model},
                          {"samples", r.rows.size()},
                          {"min_count", o.min_count},
                          {"cells", cells}};
    if (class_filter >= 0) doc["class"] = {{"index", class_filter}, {"label", label_of(class_filter)}};
    write_text_atomically((out / (name + ".json")).string(), doc.dump(1) + "\n");
    nlohmann::json gj = {{"grid", g.grid}, {"cells", g.cells.size()}, {"json", name + ".json"}};
    if (!icons.empty()) {
      const int cell_px = o.cell_size > 0 ? o.cell_size : std::clamp(4000 / g.grid, 16, o.icon_size);
      cv::Mat picture = render_grid_map(cell_index, g.grid, g.grid, icons, {}, cell_px);
      write_png((out / (name + ".png")).string(), picture);
      if (c.info.attribution_classes > 0) {
        caption_grid_map(picture, cell_index, g.grid, g.grid, cell_px, captions);
        write_png((out / (name + "_labelled.png")).string(), picture);
        pictures[name + "_labelled"] = name + "_labelled.png";
        gj["labelled"] = name + "_labelled.png";
      }
      pictures[name] = name + ".png";
      gj["picture"] = name + ".png";
      gj["cell_size"] = cell_px;
    }
    grids.push_back(std::move(gj));
  }
  nlohmann::json atlas = {{"layer", c.info.layer},
                          {"samples", r.rows.size()},
                          {"collection_rows", c.rows},
                          {"parts", c.parts},
                          {"grids", grids},
                          {"pictures", pictures},
                          {"icon_kernels", "oneDNN on CPU (icons change in the last bits with --icon-batch)"},
                          {"seconds", {{"layout", r.layout_s}, {"icons", r.icons_s}}}};
  if (class_filter >= 0) atlas["class"] = {{"index", class_filter}, {"label", label_of(class_filter)}};
  if (r.tsne_run) {
    atlas["tsne"] = {{"perplexity", r.tsne.perplexity}, {"kl", r.tsne.kl}, {"method", tsne_method_name(r.tsne.method)},
                     {"neighbours", r.tsne.neighbours}, {"iterations", o.iterations}, {"metric", "cosine"}};
  } else {
    atlas["layout_file"] = o.layout;
  }
  write_text_atomically((out / "atlas.json").string(), atlas.dump(1) + "\n");
  return atlas;
}

}  // namespace

void setup_atlas(CLI::App& app) {
  auto o = std::make_shared<AtlasCommandOptions>();
  auto* cmd = app.add_subcommand("atlas", "activation atlas of a layer: collect activations, lay out, bin, draw icons");
  add_model_options(cmd, o->model);
  add_input_options(cmd, o->inputs);
  cmd->get_option("--model")->required(false);
  cmd->get_option("inputs")->required(false);
  cmd->get_option("--shard")->description(
      "I/N: with --collect-only, collect only shard I (0-based) of N (split by each input's key, whatever the "
      "order); render the parts together with --from");
  cmd->add_option("-o,--out", o->out, "output directory")->capture_default_str();
  cmd->add_option("-l,--layer", o->layer, "layer name or alias (default: the card's default layer)");
  cmd->add_option("--samples-per-image", o->samples_per_image, "random positions per image")
      ->capture_default_str()->check(CLI::Range(1, 10000));
  cmd->add_option("--border", o->border, "keep positions this many cells away from the map's edges")
      ->capture_default_str()->check(CLI::Range(0, 1000));
  cmd->add_option("--seed", o->seed, "random seed (positions, t-SNE, icons)")->capture_default_str();
  cmd->add_option("--attribution", o->attribution,
                  "class attribution per sample: auto (all classes up to 100, else top:10), none, all, top:K")
      ->capture_default_str();
  cmd->add_flag("--collect-only", o->collect_only, "only collect activations into --out (render later with --from)");
  cmd->add_option("--from", o->from, "render from these collection directories (shards) instead of images")
      ->allow_extra_args(false);
  cmd->add_option("--grid", o->grids, "cells per side, comma-separated (default 20,40; with --class 8)");
  cmd->add_option("--min-count", o->min_count, "drop cells with fewer samples")->capture_default_str()->check(CLI::Range(1, 1000000));
  cmd->add_option("--class", o->class_filter, "class atlas: only samples whose attribution favours this class (index or name)");
  cmd->add_option("--class-top", o->class_top, "class atlas: also the N samples with the highest attribution to it")
      ->capture_default_str()->check(CLI::Range(std::int64_t{0}, std::int64_t{1} << 40));
  cmd->add_option("--layout", o->layout, "use this N x 2 .npy layout (rows in the collection's sorted order) instead of t-SNE");
  cmd->add_option("--max-points", o->max_points, "lay out at most this many samples (a seeded subset; 0: all)")
      ->capture_default_str()->check(CLI::Range(std::int64_t{0}, std::int64_t{1} << 40));
  cmd->add_option("--perplexity", o->perplexity, "t-SNE perplexity")->capture_default_str()->check(CLI::Range(1.0, 10000.0));
  cmd->add_option("--iterations", o->iterations, "t-SNE iterations")->capture_default_str()->check(CLI::Range(1, 100000));
  cmd->add_flag("--no-icons", o->no_icons, "skip the feature visualisations (cells, layout and JSON only)");
  cmd->add_option("--icon-size", o->icon_size, "icon side in pixels")->capture_default_str()->check(CLI::Range(8, 1024));
  cmd->add_option("--icon-steps", o->icon_steps, "optimisation steps per icon")->capture_default_str()->check(CLI::Range(0, 100000));
  cmd->add_option("--icon-attempts", o->icon_attempts, "images per cell, the best kept")->capture_default_str()->check(CLI::Range(1, 64));
  cmd->add_option("--icon-batch", o->icon_batch, "cells optimised together")->capture_default_str()->check(CLI::Range(1, 4096));
  cmd->add_flag("--no-whiten", o->no_whiten, "icons maximise the raw mean vector, not its whitened direction");
  cmd->add_option("--cosine-power", o->cosine_power, "icon objective: dot * max(0.1, cos)^P")->capture_default_str()
      ->check(CLI::Range(0.0f, 16.0f));
  cmd->add_option("--cell-size", o->cell_size, "pixels per cell in the atlas picture (0: from the grid and icon size)")
      ->capture_default_str()->check(CLI::Range(0, 1024));
  cmd->callback([o] {
    const bool have_inputs = !o->inputs.inputs.empty();
    if (have_inputs == !o->from.empty()) {
      throw UsageError("atlas: give image inputs (files or folders) or --from collection directories, not both");
    }
    if (o->collect_only && !have_inputs) throw UsageError("--collect-only needs image inputs");
    ensure_output_dir(o->out);
    for (const std::string& dir : o->from) {
      std::error_code ec;
      if (fs::equivalent(dir, o->out, ec)) throw UsageError("--out must not be one of the --from directories");
    }
    std::unique_ptr<ModelSession> session;
    Manifest manifest(o->out, "atlas");
    if (have_inputs) {
      if (o->model.model.empty()) throw UsageError("atlas: --model is required with image inputs");
      if (!o->inputs.shard.empty() && !o->collect_only) {
        throw UsageError("--shard collects a part of the inputs: add --collect-only, then render with --from");
      }
      session = std::make_unique<ModelSession>(open_model(o->model));
      collect(*o, *session, manifest);
      command_exit_code() = batch_exit_code(manifest);
      if (o->collect_only) {
        manifest.write();
        return;
      }
    }
    const AtlasCollection collection = read_atlas_collections(have_inputs ? std::vector<std::string>{o->out} : o->from);
    if (collection.rows < 4) {
      throw InputError("atlas: only " + std::to_string(collection.rows) + " activation sample(s) were collected; an atlas needs at least 4");
    }
    if (!session && !o->no_icons) {
      ModelOptions m = o->model;
      if (m.model.empty()) m.model = collection.info.model;
      session = std::make_unique<ModelSession>(open_model(m));
    }
    if (!have_inputs) {
      if (session) {
        describe_run(manifest, *session, {{"from", o->from}});
      } else {
        manifest.header()["options"] = {{"from", o->from}};
        manifest.header()["model"] = collection.info.model;
      }
    }

    ActivationAtlasOptions a;
    a.class_filter = o->class_filter.empty() ? -1 : parse_class(o->class_filter, collection.info);
    a.class_top = o->class_top;
    a.grids = parse_grids(!o->grids.empty() ? o->grids : (a.class_filter >= 0 ? "8" : "20,40"));
    a.min_count = o->min_count;
    a.max_points = o->max_points;
    a.tsne.perplexity = o->perplexity;
    a.tsne.iterations = o->iterations;
    a.tsne.seed = o->seed;
    a.tsne.threads = global_options().threads;
    if (!o->layout.empty()) {
      const NpyArray l = read_npy(o->layout);
      if (l.shape.size() != 2 || l.shape[1] != 2 || l.shape[0] != collection.rows) {
        throw InputError(o->layout + ": expected a " + std::to_string(collection.rows) + " x 2 layout");
      }
      a.layout = l.to_float();
    }
    a.icons = !o->no_icons;
    a.whiten = !o->no_whiten;
    a.cosine_power = o->cosine_power;
    a.icon_attempts = o->icon_attempts;
    a.icon_batch = o->icon_batch;
    a.icon.width = a.icon.height = o->icon_size;
    a.icon.steps = o->icon_steps;
    a.icon.seed = o->seed;
    auto tsne_progress = std::make_shared<std::unique_ptr<Progress>>();
    auto icon_progress = std::make_shared<std::unique_ptr<Progress>>();
    a.progress = [tsne_progress, icon_progress](std::size_t done, std::size_t total, std::string_view what) {
      auto& bar = what == "icons" ? *icon_progress : *tsne_progress;
      if (!bar) bar = std::make_unique<Progress>(std::string(what), total);
      bar->update(done);
      if (done == total) bar->finish();
    };
    // The icons' batches are fixed by the cells (the same in a sharded and a single run), so the
    // batch-invariant kernels buy nothing there, and oneDNN renders them about 4x faster on CPU (measured).
    ActivationAtlasResult r;
    {
      ScopedBatchInvariantKernels onednn(false);
      r = run_activation_atlas(session ? session->model.get() : nullptr, collection, a);
    }
    nlohmann::json atlas = write_atlas(*o, collection, r, a.class_filter);
    manifest.header()["atlas"] = atlas["pictures"];
    manifest.header()["atlas_summary"] = {{"samples", r.rows.size()}, {"grids", atlas["grids"]}, {"json", "atlas.json"}};
    manifest.write();
    if (o->inputs.html) write_index_html(o->out);
    for (const auto& g : r.grids) {
      std::printf("%s\n", (fs::path(o->out) / ("atlas_" + std::to_string(g.grid) + (a.icons ? ".png" : ".json"))).string().c_str());
    }
  });
}

}  // namespace cnnvis::cli
