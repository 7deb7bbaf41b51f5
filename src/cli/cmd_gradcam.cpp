// cnnvis gradcam: class activation maps (the Grad-CAM family and guided Grad-CAM) for each input, for one
// or more methods, layers and target classes from one forward pass.
#include <filesystem>
#include <memory>
#include <set>
#include <string_view>

#include <opencv2/imgproc.hpp>

#include "cnnvis/core/errors.h"
#include "cnnvis/core/text.h"
#include "cnnvis/io/colormap.h"
#include "cnnvis/io/manifest.h"
#include "cnnvis/io/render.h"
#include "cnnvis/methods/backprop.h"
#include "cnnvis/methods/gradcam.h"
#include "cnnvis/methods/guided_gradcam.h"
#include "commands.h"
#include "common.h"

namespace cnnvis::cli {

namespace fs = std::filesystem;

namespace {
struct GradCamCommandOptions {
  ModelOptions model;
  InputOptions inputs;
  OutputOptions output;
  std::vector<std::string> layers;
  std::vector<std::string> methods = {"gradcam"};
  std::vector<std::string> targets;
  int top_k = 0;
  int perturbation_batch = 32;
};

const char* kGuided = "guided-gradcam";

std::string percent(float p) { return cv::format(p < 0.1f ? "%.1f%%" : "%.0f%%", 100.0 * p); }
}  // namespace

void setup_gradcam(CLI::App& app) {
  auto options = std::make_shared<GradCamCommandOptions>();
  auto* cmd = app.add_subcommand("gradcam", "class activation heatmaps: " + join(cam_method_names(), ", ") + ", guided-gradcam");
  add_model_options(cmd, options->model);
  add_input_options(cmd, options->inputs);
  options->inputs.resumable = true;  // each input's outputs depend on that input alone
  add_output_options(cmd, options->output);
  cmd->add_option("-l,--layer,--layers", options->layers, "layer name(s) or alias(es), comma-separated (default: the card's)")
      ->delimiter(',')
      ->allow_extra_args(false);
  cmd->add_option("--method,--methods", options->methods,
                  "comma-separated: " + join(cam_method_names(), ", ") + ", guided-gradcam")
      ->delimiter(',')
      ->allow_extra_args(false);
  cmd->add_option("-t,--target", options->targets, "class(es) to explain: top, an index or a class name (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("-k,--top-k", options->top_k, "explain each image's K best classes")->check(CLI::Range(0, 1000));
  cmd->add_option("--perturbation-batch", options->perturbation_batch,
                  "scorecam, ablationcam: masked or ablated copies per forward pass (bounds memory)")
      ->check(CLI::PositiveNumber);
  cmd->callback([options] {
    const Colormap colormap = parse_colormap(options->output.colormap);
    CamRequest request;
    bool guided = false;
    request.methods.clear();
    for (const auto& name : options->methods) {
      if (name == kGuided || name == "guided") {
        guided = true;
      } else {
        request.methods.push_back(parse_cam_method(name));
      }
    }
    // Guided Grad-CAM multiplies by the Grad-CAM map, so that map is computed anyway.
    const bool guided_only = guided && request.methods.empty();
    if (guided_only) request.methods.push_back(CamMethod::gradcam);
    request.layers = options->layers;
    request.targets = options->targets;
    request.top_k = options->top_k;
    request.perturbation_batch = options->perturbation_batch;
    std::unique_ptr<Progress> perturbation_bar;  // one bar per layer and method, for the slow perturbation CAMs
    request.progress = [&perturbation_bar](std::size_t done, std::size_t total, std::string_view what) {
      if (!perturbation_bar) perturbation_bar = std::make_unique<Progress>(std::string(what) + " copies", total);
      perturbation_bar->update(done);
      if (done >= total) {
        perturbation_bar->finish();
        perturbation_bar.reset();
      }
    };
    if (guided && (request.targets.size() + (request.top_k > 0 ? 1 : 0) > 1 || request.top_k > 1)) {
      throw UsageError("guided-gradcam explains one target per image; drop --top-k or extra --target values");
    }

    ModelSession session = open_model(options->model);
    LoadedModel& model = *session.model;
    // Validate layers and targets before touching any input, so a typo fails fast with exit code 2.
    const std::vector<std::string> layers = check_cam_request(model, request);
    if (guided && layers.size() > 1) throw UsageError("guided-gradcam takes one layer");

    ensure_output_dir(options->output.out);
    Manifest manifest(options->output.out, "gradcam");
    describe_run(manifest, session,
                 {{"layers", layers}, {"methods", options->methods}, {"targets", options->targets},
                  {"top_k", options->top_k}, {"perturbation_batch", options->perturbation_batch}, {"colormap", options->output.colormap}, {"alpha", options->output.alpha},
                  {"fit", options->inputs.fit}, {"batch_size", options->inputs.batch_size}});

    run_batches(options->inputs, model, manifest, [&](std::vector<BatchItem>& batch) {
      std::vector<cv::Mat> inputs;
      for (auto& item : batch) inputs.push_back(item.input);
      const std::vector<ImageCams> results = run_cams(model, inputs, request);
      std::vector<GuidedGradCamResult> guided_results;
      if (guided) {
        GradCamOptions g;
        g.layer = layers.front();
        g.target = request.targets.empty() ? "top" : request.targets.front();
        guided_results = run_guided_gradcam(model, inputs, g);
      }
      for (std::size_t i = 0; i < batch.size(); ++i) {
        BatchItem& item = batch[i];
        ManifestEntry& entry = *item.entry;
        const ImageCams& r = results[i];
        const cv::Mat source = display_image(item.image.rgb, options->output.display_size);
        std::set<int> distinct_targets;
        for (const auto& map : r.maps) distinct_targets.insert(map.target.index);
        const std::size_t targets = distinct_targets.size();
        const bool several = r.maps.size() > 1 || guided;
        std::vector<SheetCell> cells = {{source, "input"}};
        nlohmann::json maps = nlohmann::json::array();
        for (const CamMap& map : r.maps) {
          if (guided_only) break;
          std::string tag = cam_method_name(map.method);
          if (layers.size() > 1) tag += "." + safe_file_stem(map.layer);
          if (targets > 1) tag += ".c" + std::to_string(map.target.index);
          const std::string key = several ? tag + "." : "";
          const cv::Mat shown = map_on_display(map.cam, item, source.size());
          const cv::Mat overlay = overlay_heatmap(source, shown, colormap, options->output.alpha);
          write_output_png(manifest, entry, key + "heatmap", item.stem + "." + tag + ".heatmap.png",
                           apply_colormap(shown, colormap));
          write_output_png(manifest, entry, key + "overlay", item.stem + "." + tag + ".overlay.png", overlay);
          write_output_npy(manifest, entry, key + "cam", item.stem + "." + tag + ".npy", map.cam);
          write_output_npy(manifest, entry, key + "cam_layer", item.stem + "." + tag + ".layer.npy", map.cam_layer);
          if (options->output.png16) {
            write_png16((fs::path(manifest.out_dir()) / (item.stem + "." + tag + ".map16.png")).string(), map.cam);
            entry.outputs.emplace_back(key + "map16", item.stem + "." + tag + ".map16.png");
          }
          maps.push_back({{"method", cam_method_name(map.method)}, {"layer", map.layer}, {"tag", tag},
                          {"target", {{"index", map.target.index}, {"label", map.target.label},
                                      {"logit", map.target.logit}, {"probability", map.target.probability}}}});
          cells.push_back({overlay, tag + ": " + map.target.label + " " + percent(map.target.probability)});
        }
        if (guided) {
          const GuidedGradCamResult& g = guided_results[i];
          // A stretched input maps back to the source's shape by resizing; crops stay at input size.
          cv::Mat shown = gradient_to_display(g.gradient);
          if (options->inputs.fit == "stretch") cv::resize(shown, shown, source.size(), 0, 0, cv::INTER_LINEAR);
          write_output_png(manifest, entry, std::string(kGuided), item.stem + "." + kGuided + ".png", shown);
          write_output_npy(manifest, entry, std::string(kGuided) + ".gradient", item.stem + "." + kGuided + ".npy", g.gradient);
          maps.push_back({{"method", kGuided}, {"layer", g.layer}, {"tag", kGuided},
                          {"target", {{"index", g.target.index}, {"label", g.target.label},
                                      {"logit", g.target.logit}, {"probability", g.target.probability}}}});
          cells.push_back({shown, std::string(kGuided) + ": " + g.target.label});
        }
        if (cells.size() > 2) {
          SheetOptions sheet;
          sheet.columns = static_cast<int>(std::min<std::size_t>(cells.size(), 4));
          sheet.cell_width = sheet.cell_height = 320;
          sheet.title = item.stem + ": " + r.top.front().label + " " + percent(r.top.front().probability);
          write_output_png(manifest, entry, "sheet", item.stem + ".sheet.png", make_contact_sheet(cells, sheet));
        }
        entry.predictions = predictions_json(r.top);
        entry.extra["maps"] = maps;
        if (!maps.empty()) {
          entry.extra["target"] = maps.front()["target"];
          entry.extra["layer"] = maps.front()["layer"];
        }
      }
    });
    command_exit_code() = batch_exit_code(manifest);
  });
}

}  // namespace cnnvis::cli
