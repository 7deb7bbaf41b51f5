// cnnvis evaluate: deletion / insertion curves, average drop / increase in confidence and (where boxes
// are known) the pointing game, per explanation method and image; a JSON table and curve charts.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include <opencv2/core.hpp>
#include <spdlog/spdlog.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/core/text.h"
#include "cnnvis/io/files.h"
#include "cnnvis/io/manifest.h"
#include "cnnvis/io/plot.h"
#include "cnnvis/methods/evaluate.h"
#include "cnnvis/methods/pointing_game.h"
#include "cnnvis/methods/target.h"
#include "commands.h"
#include "common.h"

namespace cnnvis::cli {

namespace {
struct EvaluateCommandOptions {
  ModelOptions model;
  InputOptions inputs;
  std::string out = "cnnvis-out";
  std::vector<std::string> methods = {"gradcam", "gradcam++", "layercam", "saliency", "backprop-guided", "occlusion"};
  std::string target = "top";
  EvaluateOptions evaluate;
  std::string boxes;
  float tolerance = 15;
  bool no_curves = false;
};

// Boxes by input file name from a canvases.json ({"items": [{"file": ..., "box": [x, y, w, h]}]}).
std::map<std::string, cv::Rect> read_boxes(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputError(path + ": cannot open the boxes file");
  nlohmann::json j;
  try {
    in >> j;
  } catch (const std::exception& e) {
    throw InputError(path + ": not valid JSON (" + std::string(e.what()) + ")");
  }
  std::map<std::string, cv::Rect> boxes;
  if (!j.is_object() || !j.contains("items") || !j["items"].is_array()) {
    throw InputError(path + ": expected {\"items\": [{\"file\": ..., \"box\": [x, y, w, h]}, ...]}");
  }
  for (const auto& item : j["items"]) {
    if (!item.contains("file") || !item.contains("box") || !item["box"].is_array() || item["box"].size() != 4) {
      throw InputError(path + ": every item needs \"file\" and \"box\": [x, y, w, h]");
    }
    const auto& b = item["box"];
    boxes[std::filesystem::path(item["file"].get<std::string>()).filename().string()] =
        cv::Rect(b[0].get<int>(), b[1].get<int>(), b[2].get<int>(), b[3].get<int>());
  }
  return boxes;
}

struct MethodTotals {
  double deletion = 0, insertion = 0, drop = 0;
  int increases = 0, images = 0, hits = 0, boxed = 0;
  std::vector<double> deletion_curve, insertion_curve;
};
}  // namespace

void setup_evaluate(CLI::App& app) {
  auto options = std::make_shared<EvaluateCommandOptions>();
  auto* cmd = app.add_subcommand("evaluate", "score explanation methods: deletion/insertion, average drop, pointing game");
  add_model_options(cmd, options->model);
  add_input_options(cmd, options->inputs);
  cmd->add_option("-o,--out", options->out, "output directory");
  cmd->add_option("--methods", options->methods, "methods to score (comma separated)")->delimiter(',');
  cmd->add_option("-t,--target", options->target, "class to explain: top, an index, or a class name");
  cmd->add_option("--steps", options->evaluate.steps, "points on the deletion/insertion curves minus one")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--blur-sigma", options->evaluate.insertion_blur_sigma,
                  "insertion starts from the image blurred with this sigma (0: width / 45)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--boxes", options->boxes, "canvases.json with object boxes (cnnvis canvases) for the pointing game");
  cmd->add_option("--tolerance", options->tolerance, "pointing-game tolerance in source pixels at 224 px (scaled)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--no-curves", options->no_curves, "do not write per-image curve charts");
  cmd->callback([options] {
    for (const auto& m : options->methods) {
      const auto names = explanation_method_names();
      if (std::find(names.begin(), names.end(), m) == names.end()) {
        throw UsageError("unknown method '" + m + "' (choose from " + list_for_message(names, 40) + ")");
      }
    }
    const std::map<std::string, cv::Rect> boxes =
        options->boxes.empty() ? std::map<std::string, cv::Rect>{} : read_boxes(options->boxes);
    ModelSession session = open_model(options->model);
    LoadedModel& model = *session.model;
    parse_target(options->target, model.card(), model.num_classes());
    ensure_output_dir(options->out);
    Manifest manifest(options->out, "evaluate");
    describe_run(manifest, session,
                 {{"methods", options->methods}, {"target", options->target}, {"steps", options->evaluate.steps},
                  {"blur_sigma", options->evaluate.insertion_blur_sigma}, {"boxes", options->boxes},
                  {"tolerance", options->tolerance}, {"fit", options->inputs.fit}});
    std::map<std::string, MethodTotals> totals;
    const int steps = options->evaluate.steps;
    run_batches(options->inputs, model, manifest, [&](std::vector<BatchItem>& batch) {
      std::vector<cv::Mat> inputs;
      for (auto& item : batch) inputs.push_back(item.input);
      std::vector<std::vector<PlotSeries>> deletion_series(batch.size()), insertion_series(batch.size());
      std::vector<nlohmann::json> per_image(batch.size(), nlohmann::json::object());
      for (const std::string& method : options->methods) {
        const auto explanations = explain(model, inputs, method, options->target);
        std::vector<cv::Mat> maps;
        std::vector<int> targets;
        for (const auto& e : explanations) {
          maps.push_back(e.map);
          targets.push_back(e.target);
        }
        const auto scores = score_explanations(model, inputs, maps, targets, options->evaluate);
        MethodTotals& t = totals[method];
        for (std::size_t i = 0; i < batch.size(); ++i) {
          const ExplanationScores& s = scores[i];
          nlohmann::json row = {{"target", s.target},         {"probability", s.probability},
                                {"deletion_auc", s.deletion_auc}, {"insertion_auc", s.insertion_auc},
                                {"masked_probability", s.masked_probability}, {"drop", s.drop},
                                {"increase", s.increase},     {"deletion", s.deletion},
                                {"insertion", s.insertion}};
          const std::string file = std::filesystem::path(batch[i].path).filename().string();
          if (auto it = boxes.find(file); it != boxes.end()) {
            const cv::Size source = batch[i].image.rgb.size();
            const cv::Mat on_source = map_to_source(maps[i], batch[i].region, source);
            const double tolerance = options->tolerance * std::max(source.width, source.height) / 224.0;
            const bool hit = pointing_game_hit(on_source, it->second, static_cast<int>(tolerance + 0.5));
            row["pointing_game"] = hit;
            t.hits += hit;
            t.boxed += 1;
          }
          per_image[i][method] = row;
          t.deletion += s.deletion_auc;
          t.insertion += s.insertion_auc;
          t.drop += s.drop;
          t.increases += s.increase;
          t.images += 1;
          t.deletion_curve.resize(s.deletion.size(), 0.0);
          t.insertion_curve.resize(s.insertion.size(), 0.0);
          for (std::size_t k = 0; k < s.deletion.size(); ++k) {
            t.deletion_curve[k] += s.deletion[k];
            t.insertion_curve[k] += s.insertion[k];
          }
          deletion_series[i].push_back({method, s.deletion});
          insertion_series[i].push_back({method, s.insertion});
        }
      }
      for (std::size_t i = 0; i < batch.size(); ++i) {
        ManifestEntry& entry = *batch[i].entry;
        entry.extra["scores"] = per_image[i];
        if (options->no_curves) continue;
        const cv::Mat del = plot_curves(deletion_series[i], "deletion: " + batch[i].stem, "fraction removed", "p");
        const cv::Mat ins = plot_curves(insertion_series[i], "insertion: " + batch[i].stem, "fraction inserted", "p");
        cv::Mat both;
        cv::hconcat(del, ins, both);
        write_output_png(manifest, entry, "curves", batch[i].stem + ".curves.png", both);
      }
    });

    // The table: one row per method, means over the images that succeeded.
    nlohmann::json table = nlohmann::json::object();
    std::vector<PlotSeries> mean_deletion, mean_insertion;
    for (const std::string& method : options->methods) {
      const MethodTotals& t = totals[method];
      if (t.images == 0) continue;
      nlohmann::json row = {{"images", t.images},
                            {"deletion_auc", t.deletion / t.images},
                            {"insertion_auc", t.insertion / t.images},
                            {"average_drop_percent", 100.0 * t.drop / t.images},
                            {"increase_in_confidence_percent", 100.0 * t.increases / t.images}};
      if (t.boxed > 0) {
        row["pointing_game"] = static_cast<double>(t.hits) / t.boxed;
        row["boxed_images"] = t.boxed;
      }
      table[method] = row;
      PlotSeries d{method, {}}, in{method, {}};
      for (double v : t.deletion_curve) d.values.push_back(static_cast<float>(v / t.images));
      for (double v : t.insertion_curve) in.values.push_back(static_cast<float>(v / t.images));
      mean_deletion.push_back(std::move(d));
      mean_insertion.push_back(std::move(in));
      spdlog::info("{}: deletion AUC {:.3f} (lower is better), insertion AUC {:.3f}, average drop {:.1f}%, "
                   "increase {:.1f}%{}",
                   method, t.deletion / t.images, t.insertion / t.images, 100.0 * t.drop / t.images,
                   100.0 * t.increases / t.images,
                   t.boxed > 0 ? fmt::format(", pointing game {:.3f}", static_cast<double>(t.hits) / t.boxed) : "");
    }
    manifest.header()["evaluation"] = table;
    nlohmann::json report = {{"model", model.card().name}, {"steps", steps}, {"methods", table}};
    write_text_atomically((std::filesystem::path(options->out) / "evaluation.json").string(), report.dump(2) + "\n");
    if (!mean_deletion.empty()) {
      cv::Mat both;
      cv::hconcat(plot_curves(mean_deletion, "deletion (mean)", "fraction removed", "p"),
                  plot_curves(mean_insertion, "insertion (mean)", "fraction inserted", "p"), both);
      write_png((std::filesystem::path(options->out) / "curves.png").string(), both);
    }
    manifest.write();
    command_exit_code() = batch_exit_code(manifest);
  });
}

}  // namespace cnnvis::cli
