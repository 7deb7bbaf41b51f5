// cnnvis deepdream: octave deep dream on the user's images.
#include <memory>

#include "cnnvis/io/manifest.h"
#include "cnnvis/methods/activation_max.h"
#include "commands.h"
#include "common.h"

namespace cnnvis::cli {

namespace {
struct DeepDreamCommandOptions {
  ModelOptions model;
  InputOptions inputs;
  std::string out = "cnnvis-out";
  DeepDreamOptions dream;
  float step_255 = 1.5f;
};
}  // namespace

void setup_deepdream(CLI::App& app) {
  auto options = std::make_shared<DeepDreamCommandOptions>();
  options->dream.max_side = 512;
  auto* cmd = app.add_subcommand("deepdream", "deep dream: amplify what a layer sees in your images (octaves)");
  add_model_options(cmd, options->model);
  add_input_options(cmd, options->inputs);
  cmd->add_option("-o,--out", options->out, "output directory");
  cmd->add_option("-l,--layer,--layers", options->dream.layers, "layer name(s) or alias(es), comma-separated")
      ->delimiter(',')
      ->required()
      ->allow_extra_args(false);
  cmd->add_option("--octaves", options->dream.octaves, "number of octaves")->check(CLI::Range(1, 16));
  cmd->add_option("--octave-scale", options->dream.octave_scale, "size ratio between octaves")->check(CLI::Range(1.01f, 4.0f));
  cmd->add_option("--steps", options->dream.steps, "steps per octave")->check(CLI::Range(0, 10000));
  cmd->add_option("--step", options->step_255, "step size in 0..255 pixel units (mean change per step)")->check(CLI::PositiveNumber);
  cmd->add_option("--jitter", options->dream.jitter, "random roll per step in pixels")->check(CLI::Range(0, 512));
  cmd->add_option("--max-side", options->dream.max_side, "shrink images so the longest side is at most this (0 = keep)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--seed", options->dream.seed, "random seed of the jitter");
  cmd->callback([options] {
    DeepDreamOptions dream = options->dream;
    dream.step_size = options->step_255 / 255.0f;
    ModelSession session = open_model(options->model);
    LoadedModel& model = *session.model;
    for (const auto& layer : dream.layers) model.resolve_layer(layer);  // fail fast on a typo
    ensure_output_dir(options->out);
    Manifest manifest(options->out, "deepdream");
    describe_run(manifest, session,
                 {{"layers", dream.layers}, {"octaves", dream.octaves}, {"octave_scale", dream.octave_scale},
                  {"steps", dream.steps}, {"step", options->step_255}, {"jitter", dream.jitter},
                  {"max_side", dream.max_side}, {"seed", dream.seed}});
    run_batches(options->inputs, model, manifest, [&](std::vector<BatchItem>& batch) {
      for (BatchItem& item : batch) {
        const auto start = std::chrono::steady_clock::now();
        const DeepDreamResult r = run_deepdream(model, item.image.rgb, dream);
        ManifestEntry& entry = *item.entry;
        entry.timings_ms.emplace_back("compute", elapsed_ms(start));
        write_output_png(manifest, entry, "dream", item.stem + ".deepdream.png", r.image);
        entry.extra["objective_start"] = r.objective_start;
        entry.extra["objective_final"] = r.objective_final;
        entry.extra["size"] = {r.image.cols, r.image.rows};
      }
    });
    command_exit_code() = batch_exit_code(manifest);
  });
}

}  // namespace cnnvis::cli
