// cnnvis occlusion: occlusion sensitivity maps (score drop as a patch slides over the image).
#include <filesystem>
#include <memory>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "cnnvis/io/colormap.h"
#include "cnnvis/io/manifest.h"
#include "cnnvis/io/render.h"
#include "cnnvis/methods/occlusion.h"
#include "commands.h"
#include "common.h"

namespace cnnvis::cli {

namespace {
struct OcclusionCommandOptions {
  ModelOptions model;
  InputOptions inputs;
  OutputOptions output;
  OcclusionOptions occlusion;
  std::string fill = "mean";
  std::string measure = "logit";
};
}  // namespace

void setup_occlusion(CLI::App& app) {
  auto options = std::make_shared<OcclusionCommandOptions>();
  auto* cmd = app.add_subcommand("occlusion", "occlusion sensitivity: the target's score drop as a patch slides");
  add_model_options(cmd, options->model);
  // Here --batch-size counts occluded copies per pass, which is what bounds memory; images go one by one.
  options->inputs.batch_size = options->occlusion.batch_size;
  add_input_options(cmd, options->inputs);
  cmd->get_option("--batch-size")->description("occluded copies per forward pass (bounds memory)");
  add_output_options(cmd, options->output);
  OcclusionOptions& o = options->occlusion;
  cmd->add_option("--patch", o.patch, "patch side in model-input pixels")->check(CLI::PositiveNumber);
  cmd->add_option("--stride", o.stride, "step between windows in pixels")->check(CLI::PositiveNumber);
  cmd->add_option("--fill", options->fill, "what fills the patch: mean | zero | gray | blur");
  cmd->add_option("--blur-sigma", o.blur_sigma, "Gaussian sigma of the blur fill (0: patch / 2)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--measure", options->measure, "score whose drop is mapped: logit | prob");
  cmd->add_option("-t,--target", o.target, "class to explain: top, an index, or a class name");
  cmd->add_flag("--exact-naive", o.exact_naive,
                "brute force: one full forward pass per occluded copy (for checking; slower)");
  cmd->callback([options] {
    const Colormap colormap = parse_colormap(options->output.colormap);
    OcclusionOptions occlusion = options->occlusion;
    occlusion.fill = parse_occlusion_fill(options->fill);
    occlusion.measure = parse_occlusion_measure(options->measure);
    occlusion.batch_size = options->inputs.batch_size;
    InputOptions inputs = options->inputs;
    inputs.batch_size = 1;
    ModelSession session = open_model(options->model);
    LoadedModel& model = *session.model;
    parse_target(occlusion.target, model.card(), model.num_classes());  // fail fast, exit code 2

    ensure_output_dir(options->output.out);
    Manifest manifest(options->output.out, "occlusion");
    describe_run(manifest, session,
                 {{"patch", occlusion.patch}, {"stride", occlusion.stride}, {"fill", occlusion_fill_name(occlusion.fill)},
                  {"blur_sigma", occlusion.blur_sigma}, {"measure", occlusion_measure_name(occlusion.measure)},
                  {"target", occlusion.target}, {"engine", occlusion.exact_naive ? "exact_naive" : "incremental"},
                  {"batch_size", occlusion.batch_size}, {"colormap", options->output.colormap},
                  {"alpha", options->output.alpha}, {"fit", inputs.fit}});
    run_batches(inputs, model, manifest, [&](std::vector<BatchItem>& batch) {
      for (BatchItem& item : batch) {
        const std::size_t windows =
            occlusion_windows(model.card().input_height, model.card().input_width, occlusion.patch, occlusion.stride)
                .size();
        Progress progress("windows of " + item.stem, windows);
        OcclusionOptions per_image = occlusion;
        per_image.progress = [&progress](std::size_t done, std::size_t) { progress.update(done); };
        const OcclusionResult r = run_occlusion(model, {item.input}, per_image)[0];
        progress.finish();
        ManifestEntry& entry = *item.entry;
        // Displayed: where occluding lowers the score (positive drop), scaled by the largest drop.
        const cv::Mat map01 = scale_by_max(cv::max(r.map, 0.0));
        write_map_pictures(manifest, item, "occlusion", map01, options->output, colormap);
        write_output_npy(manifest, entry, "occlusion", item.stem + ".occlusion.npy", r.map);
        write_output_npy(manifest, entry, "occluded_score", item.stem + ".occlusion.occluded_score.npy",
                         r.occluded_score);
        write_output_npy(manifest, entry, "window_drops", item.stem + ".occlusion.windows.npy", r.window_drops);
        entry.predictions = predictions_json(r.top);
        entry.extra["target"] = {{"index", r.target.index}, {"label", r.target.label}, {"logit", r.target.logit},
                                 {"probability", r.target.probability}};
        entry.extra["score"] = r.score;
        entry.extra["windows"] = r.windows.size();
        entry.extra["engine"] = r.engine;
      }
    });
    command_exit_code() = batch_exit_code(manifest);
  });
}

}  // namespace cnnvis::cli
