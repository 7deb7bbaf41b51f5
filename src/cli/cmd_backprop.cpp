// cnnvis backprop: input-gradient images (guided backpropagation, deconvnet, vanilla gradient).
#include <memory>

#include <opencv2/core.hpp>

#include "cnnvis/io/colormap.h"
#include "cnnvis/io/manifest.h"
#include "cnnvis/methods/backprop.h"
#include "commands.h"
#include "common.h"

namespace cnnvis::cli {

namespace {
struct BackpropCommandOptions {
  ModelOptions model;
  InputOptions inputs;
  OutputOptions output;
  std::string mode = "guided";
  std::string target = "top";
  double lrp_epsilon = 1e-6;
};

}  // namespace

void setup_backprop(CLI::App& app) {
  auto options = std::make_shared<BackpropCommandOptions>();
  auto* cmd = app.add_subcommand("backprop", "input-gradient images (guided backprop, deconvnet, vanilla gradient)");
  add_model_options(cmd, options->model);
  add_input_options(cmd, options->inputs);
  options->inputs.resumable = true;  // each input's outputs depend on that input alone
  add_output_options(cmd, options->output);
  cmd->add_option("--mode", options->mode,
                  "guided | deconv | vanilla | lrp-epsilon | lrp-epsilon-plus | lrp-epsilon-plus-flat (= lrp) | "
                  "lrp-epsilon-plus-box");
  cmd->add_option("--lrp-epsilon", options->lrp_epsilon, "LRP: epsilon of the epsilon rule (and stabiliser)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("-t,--target", options->target, "class to explain: top, an index, or a class name");
  cmd->callback([options] {
    const Colormap colormap = parse_colormap(options->output.colormap);
    BackpropOptions backprop;
    backprop.mode = parse_backprop_mode(options->mode);
    backprop.target = options->target;
    backprop.lrp_epsilon = options->lrp_epsilon;
    ModelSession session = open_model(options->model);
    LoadedModel& model = *session.model;
    // Check the target once, before any input, so a typo fails fast with exit code 2.
    parse_target(backprop.target, model.card(), model.num_classes());
    check_backprop_request(model, backprop);

    ensure_output_dir(options->output.out);
    Manifest manifest(options->output.out, "backprop");
    describe_run(manifest, session,
                 {{"mode", backprop_mode_name(backprop.mode)}, {"target", backprop.target}, {"lrp_epsilon", backprop.lrp_epsilon},
                  {"colormap", options->output.colormap}, {"fit", options->inputs.fit},
                  {"batch_size", options->inputs.batch_size}});
    const std::string tag = backprop_mode_name(backprop.mode);
    run_batches(options->inputs, model, manifest, [&](std::vector<BatchItem>& batch) {
      std::vector<cv::Mat> inputs;
      for (auto& item : batch) inputs.push_back(item.input);
      auto results = run_backprop(model, inputs, backprop);
      for (std::size_t i = 0; i < batch.size(); ++i) {
        BatchItem& item = batch[i];
        const BackpropResult& r = results[i];
        ManifestEntry& entry = *item.entry;
        // Gradient images stay at the model input size: they are pixel-level and the input is what the
        // network saw (a crop or letterbox of the source).
        write_output_png(manifest, entry, "gradient", item.stem + "." + tag + ".png", gradient_to_display(r.gradient));
        write_output_png(manifest, entry, "magnitude", item.stem + "." + tag + ".magnitude.png",
                         apply_colormap(scale_by_max(r.magnitude), colormap));
        write_output_npy(manifest, entry, "gradient_npy", item.stem + "." + tag + ".npy", r.gradient);
        entry.predictions = predictions_json(r.top);
        entry.extra["target"] = {{"index", r.target.index}, {"label", r.target.label}, {"logit", r.target.logit},
                                 {"probability", r.target.probability}};
        entry.extra["mode"] = tag;
      }
    });
    command_exit_code() = batch_exit_code(manifest);
  });
}

}  // namespace cnnvis::cli
