#include "options.h"

namespace cnnvis::cli {

GlobalOptions& global_options() {
  static GlobalOptions options;
  return options;
}

void add_model_options(CLI::App* app, ModelOptions& options, const std::string& default_model) {
  options.model = default_model;
  auto* model = app->add_option("-m,--model", options.model, "model: vgg16, googlenet, fashion_vgg, inception5h (see `cnnvis models`), or a TorchScript FILE.pt");
  if (default_model.empty()) model->required();
  app->add_option("--weights", options.weights, "weights file (.safetensors); default: from the model card");
  app->add_option("--card", options.card, "model card (.json); default: next to the weights, then models/");
  app->add_option("--models-dir", options.models_dir, "directory searched first for cards and weights");
  app->add_flag("--lenient", options.lenient, "load weights even when some keys are missing or unexpected (warns)");
}

void add_input_options(CLI::App* app, InputOptions& options) {
  app->add_option("inputs", options.inputs, "image files, directories, or - to read paths from stdin")->required();
  app->add_flag("-r,--recursive", options.recursive, "descend into subdirectories");
  app->add_option("-b,--batch-size", options.batch_size, "images per forward pass")->check(CLI::Range(1, 4096));
  app->add_option("--max-pixels", options.max_pixels, "refuse images with more pixels than this (decompression bombs)");
  app->add_option("--fit", options.fit, "how images become the model's input: stretch | center-crop | letterbox")
      ->check(CLI::IsMember({"stretch", "center-crop", "letterbox"}));
  app->add_option("--shard", options.shard,
                  "I/N: process only shard I (0-based) of N; the split hashes each input's path below its folder "
                  "argument, so it does not depend on input order (join the parts with `cnnvis merge-manifests`)");
  app->add_flag("--no-resume{false}", options.resume,
                "recompute every input (default: skip inputs whose outputs in --out are complete and were made "
                "with the same settings)");
  app->add_flag("--no-html{false}", options.html, "do not write index.html and the input pictures it shows");
  options.command = app;
}

void add_output_options(CLI::App* app, OutputOptions& options) {
  app->add_option("-o,--out", options.out, "output directory");
  app->add_option("--colormap", options.colormap, "jet | turbo | viridis | inferno | gray | diverging");
  app->add_option("--alpha", options.alpha, "heatmap weight in overlays")->check(CLI::Range(0.0f, 1.0f));
  app->add_option("--display-size", options.display_size,
                  "longest side of written overlays in pixels (0 = source size)")->check(CLI::NonNegativeNumber);
  app->add_flag("--png16", options.png16, "also write each map as a 16-bit grayscale PNG (model-input resolution)");
}

}  // namespace cnnvis::cli
