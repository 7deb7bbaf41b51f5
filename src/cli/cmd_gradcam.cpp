// cnnvis gradcam: Grad-CAM (and Grad-CAM++) heatmaps, overlays and raw maps for each input.
#include <memory>

#include <opencv2/imgproc.hpp>

#include "cnnvis/io/colormap.h"
#include "cnnvis/io/manifest.h"
#include "cnnvis/io/render.h"
#include "cnnvis/methods/gradcam.h"
#include "commands.h"
#include "common.h"

namespace cnnvis::cli {

namespace {
struct GradCamCommandOptions {
  ModelOptions model;
  InputOptions inputs;
  OutputOptions output;
  std::string layer;
  std::string method = "gradcam";
  std::string target = "top";
};
}  // namespace

void setup_gradcam(CLI::App& app) {
  auto options = std::make_shared<GradCamCommandOptions>();
  auto* cmd = app.add_subcommand("gradcam", "class activation heatmaps (Grad-CAM, Grad-CAM++)");
  add_model_options(cmd, options->model);
  add_input_options(cmd, options->inputs);
  add_output_options(cmd, options->output);
  cmd->add_option("-l,--layer", options->layer, "layer name or alias (default: the model card's)");
  cmd->add_option("--method", options->method, "gradcam | gradcam++");
  cmd->add_option("-t,--target", options->target, "class to explain: top, an index, or a class name");
  cmd->callback([options] {
    const Colormap colormap = parse_colormap(options->output.colormap);
    GradCamOptions cam;
    cam.method = parse_cam_method(options->method);
    cam.target = options->target;
    ModelSession session = open_model(options->model);
    LoadedModel& model = *session.model;
    // Resolve the layer and target once, before any input, so a typo fails fast with exit code 2.
    cam.layer = model.resolve_layer(options->layer.empty() ? model.card().default_layer : options->layer);
    parse_target(cam.target, model.card(), model.num_classes());

    ensure_output_dir(options->output.out);
    Manifest manifest(options->output.out, "gradcam");
    describe_run(manifest, session,
                 {{"layer", cam.layer}, {"method", cam_method_name(cam.method)}, {"target", cam.target},
                  {"colormap", options->output.colormap}, {"alpha", options->output.alpha},
                  {"fit", options->inputs.fit}, {"batch_size", options->inputs.batch_size}});
    const std::string tag = cam_method_name(cam.method);
    run_batches(options->inputs, model, manifest, [&](std::vector<BatchItem>& batch) {
      std::vector<cv::Mat> inputs;
      for (auto& item : batch) inputs.push_back(item.input);
      auto results = run_gradcam(model, inputs, cam);
      for (std::size_t i = 0; i < batch.size(); ++i) {
        BatchItem& item = batch[i];
        const GradCamResult& r = results[i];
        ManifestEntry& entry = *item.entry;
        const cv::Mat source = display_image(item.image.rgb, options->output.display_size);
        const cv::Mat on_source = map_to_source(r.cam, item.region, item.image.rgb.size());
        cv::Mat shown;
        cv::resize(on_source, shown, source.size(), 0, 0, cv::INTER_LINEAR);
        write_output_png(manifest, entry, "heatmap", item.stem + "." + tag + ".heatmap.png", apply_colormap(shown, colormap));
        write_output_png(manifest, entry, "overlay", item.stem + "." + tag + ".overlay.png",
                         overlay_heatmap(source, shown, colormap, options->output.alpha));
        write_output_npy(manifest, entry, "cam", item.stem + "." + tag + ".npy", r.cam);
        write_output_npy(manifest, entry, "cam_layer", item.stem + "." + tag + ".layer.npy", r.cam_layer);
        entry.predictions = predictions_json(r.top);
        entry.extra["target"] = {{"index", r.target.index}, {"label", r.target.label}, {"logit", r.target.logit},
                                 {"probability", r.target.probability}};
        entry.extra["layer"] = r.layer;
      }
    });
    command_exit_code() = batch_exit_code(manifest);
  });
}

}  // namespace cnnvis::cli
