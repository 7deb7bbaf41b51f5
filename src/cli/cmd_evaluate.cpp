// cnnvis evaluate: deletion / insertion curves, average drop / increase in confidence, (where boxes are
// known) the pointing game, optionally ROAD (--road) and the cascading randomisation test
// (--randomisation), per explanation method and image; a JSON table and curve charts.
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
#include "cnnvis/methods/model_randomisation.h"
#include "cnnvis/methods/pointing_game.h"
#include "cnnvis/methods/road.h"
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
  bool road = false;
  RoadOptions road_options;
  std::string road_percentages;  // "10,20,..." (parsed in the callback: a one-line usage error)
  bool randomisation = false;
  RandomisationOptions randomisation_options;
  std::uint64_t seed = 0;
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
  double road_morf = 0, road_lerf = 0, road_combined = 0;
  std::vector<double> road_morf_curve, road_lerf_curve;
  std::vector<std::string> randomisation_steps;
  std::vector<double> spearman, ssim;  // sums per step
};

std::vector<float> means(const std::vector<double>& sums, int count) {
  std::vector<float> out;
  for (double v : sums) out.push_back(static_cast<float>(v / std::max(1, count)));
  return out;
}

void add_to(std::vector<double>& sums, const std::vector<float>& values) {
  sums.resize(values.size(), 0.0);
  for (std::size_t k = 0; k < values.size(); ++k) sums[k] += values[k];
}
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
  auto* road = cmd->add_flag("--road", options->road,
                             "ROAD (Rong et al. 2022): MoRF/LeRF with noisy linear imputation, ROADCombined");
  cmd->add_option("--road-percentages", options->road_percentages,
                  "percentages of the pixels ROAD removes (comma separated, each 1..99; default 10,20,...,90)")
      ->needs(road);
  cmd->add_option("--road-noise", options->road_options.noise,
                  "sd of the noise added to imputed pixels, on the normalised input (road.py: 0.01)")
      ->check(CLI::NonNegativeNumber)
      ->needs(road);
  auto* randomisation = cmd->add_flag(
      "--randomisation", options->randomisation,
      "cascading model-parameter randomisation test (Adebayo et al. 2018): Spearman / SSIM per layer step");
  cmd->add_option("--randomisation-steps", options->randomisation_options.max_steps,
                  "randomise only the top N layer steps (0: all)")
      ->check(CLI::NonNegativeNumber)
      ->needs(randomisation);
  cmd->add_option("--seed", options->seed, "seed of ROAD's noise and of the randomised weights");
  cmd->callback([options] {
    if (!options->road_percentages.empty()) {
      options->road_options.percentages.clear();
      for (const std::string& part : split(options->road_percentages, ',')) {
        int k = 0;
        std::size_t used = 0;
        try {
          k = std::stoi(part, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (used == 0 || used != part.size() || k < 1 || k > 99) {
          throw UsageError("--road-percentages: each must be an integer in 1..99, got '" + part + "'");
        }
        options->road_options.percentages.push_back(k);
      }
    }
    options->road_options.seed = options->seed;
    options->randomisation_options.seed = options->seed;
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
                  {"tolerance", options->tolerance}, {"fit", options->inputs.fit}, {"road", options->road},
                  {"road_percentages", options->road_options.percentages}, {"road_noise", options->road_options.noise},
                  {"randomisation", options->randomisation},
                  {"randomisation_steps", options->randomisation_options.max_steps}, {"seed", options->seed}});
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
        std::vector<RoadScores> road_scores;
        if (options->road) road_scores = score_road(model, inputs, maps, targets, options->road_options);
        RandomisationResult randomised;
        if (options->randomisation) {
          randomised = cascading_randomisation(model, inputs, method, explanations, options->randomisation_options);
        }
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
          if (options->road) {
            const RoadScores& r = road_scores[i];
            row["road"] = {{"morf", r.morf}, {"lerf", r.lerf}, {"morf_mean", r.morf_mean},
                           {"lerf_mean", r.lerf_mean}, {"combined", r.combined}};
            t.road_morf += r.morf_mean;
            t.road_lerf += r.lerf_mean;
            t.road_combined += r.combined;
            add_to(t.road_morf_curve, r.morf);
            add_to(t.road_lerf_curve, r.lerf);
          }
          if (options->randomisation) {
            std::vector<float> rho, ssim;
            for (std::size_t step = 0; step < randomised.steps.size(); ++step) {
              rho.push_back(randomised.spearman[step][i]);
              ssim.push_back(randomised.ssim[step][i]);
            }
            row["randomisation"] = {{"steps", randomised.steps}, {"spearman", rho}, {"ssim", ssim}};
            t.randomisation_steps = randomised.steps;
            add_to(t.spearman, rho);
            add_to(t.ssim, ssim);
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
    std::vector<PlotSeries> mean_deletion, mean_insertion, road_curves, randomisation_curves;
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
      if (options->road) {
        row["road_morf"] = t.road_morf / t.images;
        row["road_lerf"] = t.road_lerf / t.images;
        row["road_combined"] = t.road_combined / t.images;
        row["road_morf_curve"] = means(t.road_morf_curve, t.images);
        row["road_lerf_curve"] = means(t.road_lerf_curve, t.images);
        road_curves.push_back({method + " MoRF", means(t.road_morf_curve, t.images)});
        road_curves.push_back({method + " LeRF", means(t.road_lerf_curve, t.images)});
        spdlog::info("{}: ROAD MoRF {:.3f} (lower is better), LeRF {:.3f}, combined {:.3f} (higher is better)", method,
                     t.road_morf / t.images, t.road_lerf / t.images, t.road_combined / t.images);
      }
      if (options->randomisation) {
        const std::vector<float> rho = means(t.spearman, t.images);
        row["randomisation"] = {
            {"steps", t.randomisation_steps}, {"spearman", rho}, {"ssim", means(t.ssim, t.images)}};
        PlotSeries series{method, {1.0f}};  // step 0: the original map against itself
        for (float v : rho) series.values.push_back(std::max(0.0f, v));
        randomisation_curves.push_back(std::move(series));
        spdlog::info("{}: randomisation Spearman by step {}", method,
                     join([&] {
                       std::vector<std::string> parts;
                       for (float v : rho) parts.push_back(fmt::format("{:.3f}", v));
                       return parts;
                     }(), " "));
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
    if (options->road) {
      report["road"] = {{"percentages", options->road_options.percentages}, {"noise", options->road_options.noise},
                        {"seed", options->seed}, {"score", "softmax probability of the target"}};
    }
    if (options->randomisation) report["randomisation"] = {{"seed", options->seed}, {"order", "top (logits) first"}};
    write_text_atomically((std::filesystem::path(options->out) / "evaluation.json").string(), report.dump(2) + "\n");
    if (!mean_deletion.empty()) {
      cv::Mat both;
      cv::hconcat(plot_curves(mean_deletion, "deletion (mean)", "fraction removed", "p"),
                  plot_curves(mean_insertion, "insertion (mean)", "fraction inserted", "p"), both);
      write_png((std::filesystem::path(options->out) / "curves.png").string(), both);
    }
    if (!road_curves.empty()) {
      write_png((std::filesystem::path(options->out) / "road.png").string(),
                plot_curves(road_curves, "ROAD (mean)", "percent removed (first to last percentage)", "p"));
    }
    if (!randomisation_curves.empty()) {
      write_png((std::filesystem::path(options->out) / "randomisation.png").string(),
                plot_curves(randomisation_curves, "cascading randomisation (mean)",
                            "layer steps randomised, top first (0 to all)", "Spearman |map|"));
    }
    manifest.write();
    command_exit_code() = batch_exit_code(manifest);
  });
}

}  // namespace cnnvis::cli
