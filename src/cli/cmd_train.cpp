// cnnvis train: trains the demo model fashion_vgg on Fashion-MNIST canvases, optionally recording the
// "watch the network learn" movie.
#include <cstdio>
#include <memory>
#include <string>

#include "cnnvis/core/errors.h"
#include "cnnvis/core/runtime.h"
#include "cnnvis/methods/train.h"
#include "commands.h"
#include "common.h"

namespace cnnvis::cli {

namespace {
struct TrainCommandOptions {
  std::string dataset = "fashion-mnist";
  std::string out = "models/fashion_vgg.safetensors";
  TrainOptions train;
};
}  // namespace

void setup_train(CLI::App& app) {
  auto options = std::make_shared<TrainCommandOptions>();
  TrainOptions& t = options->train;
  auto* cmd = app.add_subcommand("train", "train the demo model fashion_vgg on Fashion-MNIST canvases");
  cmd->add_option("--dataset", options->dataset, "data set to train on (only fashion-mnist)")->capture_default_str();
  cmd->add_option("--data-dir", t.data_dir, "directory with the Fashion-MNIST IDX files")->capture_default_str();
  cmd->add_option("--epochs", t.epochs, "passes over the training items (new canvases every epoch)")
      ->capture_default_str();
  cmd->add_option("--seed", t.seed, "seed for weights, data order and training canvases")->capture_default_str();
  cmd->add_option("--batch-size", t.batch_size, "canvases per step")->capture_default_str();
  cmd->add_option("--lr", t.learning_rate, "peak AdamW learning rate (warm-up, then cosine decay)")
      ->capture_default_str();
  cmd->add_option("--label-smoothing", t.label_smoothing, "share of the training target spread over all classes")
      ->capture_default_str();
  cmd->add_option("--train-limit", t.train_limit, "use only the first N training items (0 = all 60000)")
      ->capture_default_str();
  cmd->add_option("--test-limit", t.test_limit, "evaluate on the first N test canvases (0 = all 10000)")
      ->capture_default_str();
  cmd->add_option("-o,--out", options->out, "weights file to write; the model card goes next to it (.json)")
      ->capture_default_str();
  cmd->add_option("--crop-size", t.crop_size,
                  "train most steps on crops of this side that contain the item (0 = whole canvases)")
      ->capture_default_str();
  cmd->add_option("--full-canvas-fraction", t.full_canvas_fraction,
                  "share of the steps, at the end, trained on whole canvases")
      ->capture_default_str();
  cmd->add_option("--precision", t.precision,
                  "arithmetic of training steps: auto (bf16 on CPUs with AVX512-BF16, else fp32), fp32 or bf16")
      ->capture_default_str();
  cmd->add_option("--watch", t.watch_dir, "record the training movie (frames, GIFs, curves) into this directory");
  cmd->add_option("--watch-every", t.watch_every, "steps between movie frames")->capture_default_str();
  cmd->callback([options] {
    if (options->dataset != "fashion-mnist")
      throw UsageError("unknown data set '" + options->dataset + "' (only fashion-mnist is supported)");
    const GlobalOptions& global = global_options();
    const RuntimeInfo runtime = configure_runtime({global.device, global.threads});
    TrainOptions train = options->train;
    train.device = runtime.device;

    // One progress display for the training steps, paused while the test set is evaluated after each
    // epoch, so that its rate and ETA count training time only; a fresh one for each evaluation.
    std::unique_ptr<Progress> training, evaluation;
    train.progress = [&](std::size_t done, std::size_t total, std::string_view what) {
      if (what == "train") {
        if (evaluation) evaluation.reset();
        if (!training) {
          // Steps on bigger crops take longer: the ETA weighs the steps left by their pixels.
          const auto total_steps = static_cast<std::int64_t>(total);
          training = std::make_unique<Progress>("train", total, 0, [&train, total_steps](std::size_t step) {
            const double side = train_step_side(train, static_cast<std::int64_t>(step), total_steps);
            return side * side;
          });
        }
        training->resume();
        training->update(done);
        return;
      }
      if (training) training->pause();
      if (!evaluation) evaluation = std::make_unique<Progress>(std::string(what), total);
      evaluation->update(done);
      if (done == total) {
        evaluation->finish();
        evaluation.reset();
      }
    };
    const TrainResult result = train_fashion_vgg(train, options->out);
    if (training) training->finish();

    std::printf("trained fashion_vgg: test accuracy %.4f after %d epochs (%lld steps) in %.1f s; weights %s, card %s",
                result.test_accuracy, train.epochs, static_cast<long long>(result.steps), result.seconds,
                result.weights_path.c_str(), result.card_path.c_str());
    if (!train.watch_dir.empty()) std::printf(", movie %s", train.watch_dir.c_str());
    std::printf("\n");
  });
}

}  // namespace cnnvis::cli
