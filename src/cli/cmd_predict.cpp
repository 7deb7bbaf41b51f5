// cnnvis predict: top-k classes with names and probabilities for each input.
#include <cstdio>
#include <memory>

#include "cnnvis/io/manifest.h"
#include "cnnvis/methods/predict.h"
#include "commands.h"
#include "common.h"

namespace cnnvis::cli {

namespace {
struct PredictCommandOptions {
  ModelOptions model;
  InputOptions inputs;
  std::string out;
  int top_k = 5;
};
}  // namespace

void setup_predict(CLI::App& app) {
  auto options = std::make_shared<PredictCommandOptions>();
  auto* cmd = app.add_subcommand("predict", "classify images: top-k classes with probabilities");
  add_model_options(cmd, options->model);
  add_input_options(cmd, options->inputs);
  cmd->add_option("-k,--top-k", options->top_k, "classes to show per image")->check(CLI::Range(1, 100000));
  cmd->add_option("-o,--out", options->out, "also write manifest.json into this directory");
  cmd->callback([options] {
    ModelSession session = open_model(options->model);
    const std::string out_dir = options->out.empty() ? std::string() : options->out;
    if (!out_dir.empty()) ensure_output_dir(out_dir);
    Manifest manifest(out_dir.empty() ? "." : out_dir, "predict");
    describe_run(manifest, session, {{"top_k", options->top_k}, {"fit", options->inputs.fit}});
    PredictOptions predict;
    predict.top_k = options->top_k;
    auto process = [&](std::vector<BatchItem>& batch) {
      std::vector<cv::Mat> inputs;
      for (auto& item : batch) inputs.push_back(item.input);
      auto results = run_predict(*session.model, inputs, predict);
      for (std::size_t i = 0; i < batch.size(); ++i) {
        batch[i].entry->predictions = predictions_json(results[i]);
        std::printf("%s\n", batch[i].path.c_str());
        for (const auto& p : results[i]) {
          std::printf("  %6.2f%%  %4d  %s\n", 100.0 * p.probability, p.index, p.label.c_str());
        }
      }
      std::fflush(stdout);
    };
    // Without --out the manifest only tracks failures for the exit code.
    run_batches(options->inputs, *session.model, manifest, process, /*write_manifest=*/!out_dir.empty());
    command_exit_code() = batch_exit_code(manifest);
  });
}

}  // namespace cnnvis::cli
