// cnnvis saliency: pixel saliency maps (vanilla gradient, SmoothGrad, SmoothGrad-squared, VarGrad,
// integrated gradients, input x gradient).
#include <cstdint>
#include <memory>

#include <opencv2/core.hpp>

#include "cnnvis/core/errors.h"
#include "cnnvis/io/colormap.h"
#include "cnnvis/io/manifest.h"
#include "cnnvis/io/render.h"
#include "cnnvis/methods/saliency.h"
#include "commands.h"
#include "common.h"

namespace cnnvis::cli {

namespace {
struct SaliencyCommandOptions {
  ModelOptions model;
  InputOptions inputs;
  OutputOptions output;
  SaliencyOptions saliency;
  std::string method;  // "" = automatic: from --smooth / --integrated
};

}  // namespace

void setup_saliency(CLI::App& app) {
  auto options = std::make_shared<SaliencyCommandOptions>();
  auto* cmd = app.add_subcommand(
      "saliency", "pixel saliency maps (gradient, SmoothGrad(-squared), VarGrad, integrated gradients, input x gradient)");
  add_model_options(cmd, options->model);
  add_input_options(cmd, options->inputs);
  options->inputs.resumable = true;  // each input's outputs depend on that input alone
  add_output_options(cmd, options->output);
  SaliencyOptions& s = options->saliency;
  cmd->add_option("-t,--target", s.target, "class to explain: top, an index, or a class name");
  cmd->add_option("--method", options->method,
                  "vanilla | smoothgrad | smoothgrad-sq | vargrad | integrated | input-x-gradient "
                  "(default: smoothgrad with --smooth, integrated with --integrated, vanilla otherwise)");
  cmd->add_option("--smooth", s.smooth_samples,
                  "noisy copies for smoothgrad, smoothgrad-sq, vargrad (0 = plain gradient, or 50 with --method)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--noise", s.noise, "SmoothGrad noise sd as a fraction of the input range")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--integrated", s.integrated_steps,
                  "integrated gradients with this many steps (0 = off, or 50 with --method integrated)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--seed", s.seed, "noise seed of the noisy methods (same seed, same map)");
  cmd->add_option("--chunk", s.chunk, "noisy copies or path points per forward pass")->check(CLI::PositiveNumber);
  cmd->callback([options] {
    const Colormap colormap = parse_colormap(options->output.colormap);
    SaliencyOptions saliency = options->saliency;
    if (saliency.smooth_samples > 0 && saliency.integrated_steps > 0) {
      throw UsageError("choose either --smooth or --integrated, not both");
    }
    saliency.method = parse_saliency_method(options->method);
    validate_saliency_options(saliency);
    ModelSession session = open_model(options->model);
    LoadedModel& model = *session.model;
    // Check the target once, before any input, so a typo fails fast with exit code 2.
    parse_target(saliency.target, model.card(), model.num_classes());

    ensure_output_dir(options->output.out);
    Manifest manifest(options->output.out, "saliency");
    describe_run(manifest, session,
                 {{"method", saliency_method_name(saliency)}, {"target", saliency.target},
                  {"smooth", saliency.smooth_samples}, {"noise", saliency.noise},
                  {"integrated", saliency.integrated_steps}, {"seed", saliency.seed},
                  {"colormap", options->output.colormap}, {"alpha", options->output.alpha},
                  {"fit", options->inputs.fit}, {"batch_size", options->inputs.batch_size}});
    run_batches(options->inputs, model, manifest, [&](std::vector<BatchItem>& batch) {
      std::vector<cv::Mat> inputs;
      for (auto& item : batch) inputs.push_back(item.input);
      auto results = run_saliency(model, inputs, saliency);
      for (std::size_t i = 0; i < batch.size(); ++i) {
        BatchItem& item = batch[i];
        const SaliencyResult& r = results[i];
        ManifestEntry& entry = *item.entry;
        const cv::Mat map01 = scale_by_max(r.map);
        // The map itself at model input size (pixel-level, like the .npy); the overlay on the source.
        write_output_png(manifest, entry, "map", item.stem + ".saliency.png", apply_colormap(map01, colormap));
        const cv::Mat source = display_image(item.image.rgb, options->output.display_size);
        // Area averaging when shrinking keeps thin, pixel-level structures instead of aliasing them.
        const cv::Mat shown = map_on_display(map01, item, source.size(), true);
        write_output_png(manifest, entry, "overlay", item.stem + ".saliency.overlay.png",
                         overlay_heatmap(source, shown, colormap, options->output.alpha));
        write_output_npy(manifest, entry, "saliency", item.stem + ".saliency.npy", r.map);
        entry.predictions = predictions_json(r.top);
        entry.extra["target"] = {{"index", r.target.index}, {"label", r.target.label}, {"logit", r.target.logit},
                                 {"probability", r.target.probability}};
        entry.extra["method"] = saliency_method_name(saliency);
      }
    });
    command_exit_code() = batch_exit_code(manifest);
  });
}

}  // namespace cnnvis::cli
