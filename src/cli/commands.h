// Every subcommand registers itself on the app: declares its options and sets the callback that runs it.
// Callbacks store their exit code in command_exit_code().
#pragma once

#include <CLI/CLI.hpp>

namespace cnnvis::cli {

int& command_exit_code();

void setup_models(CLI::App& app);
void setup_layers(CLI::App& app);
void setup_predict(CLI::App& app);
void setup_gradcam(CLI::App& app);
void setup_backprop(CLI::App& app);
void setup_saliency(CLI::App& app);
void setup_occlusion(CLI::App& app);
void setup_rise(CLI::App& app);
void setup_evaluate(CLI::App& app);
void setup_canvases(CLI::App& app);
void setup_train(CLI::App& app);
void setup_demo(CLI::App& app);
void setup_activation_max(CLI::App& app);
void setup_deepdream(CLI::App& app);
void setup_filters(CLI::App& app);
void setup_activations(CLI::App& app);
void setup_tsne(CLI::App& app);
void setup_top_patches(CLI::App& app);
void setup_compare(CLI::App& app);
void setup_merge_manifests(CLI::App& app);
void setup_atlas(CLI::App& app);

}  // namespace cnnvis::cli
