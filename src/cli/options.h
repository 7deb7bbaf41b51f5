// The option groups the subcommands share: global options, the model, the inputs and batch-run
// behaviour, the outputs. CLI layer only: no LibTorch here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cnnvis/io/image_io.h"

namespace cnnvis::cli {

struct GlobalOptions {
  int verbosity = 0;
  bool quiet = false;
  std::string device = "auto";
  int threads = 0;
  bool fast = false;  // --fast: oneDNN convolutions on CPU (faster, not batch-invariant)
  bool native_kernels = false;  // --native-kernels: batch-invariant native kernels, not oneDNN per image
  std::vector<std::string> argv;
};
GlobalOptions& global_options();

struct ModelOptions {
  std::string model;
  std::string weights;
  std::string card;
  std::string models_dir;
  bool lenient = false;
};
void add_model_options(CLI::App* app, ModelOptions& options, const std::string& default_model = "");

struct InputOptions {
  std::vector<std::string> inputs;
  bool recursive = false;
  int batch_size = 8;
  std::uint64_t max_pixels = ImageLimits{}.max_pixels;
  std::string fit = "stretch";
  // Batch-run behaviour (run_batches), set by the options add_input_options registers.
  std::string shard;      // "I/N": only the inputs of shard I of N (see cnnvis/io/batch.h); "" = all
  bool resume = true;     // skip inputs whose outputs and manifest entry in the output directory are
                          // complete and were made with the same settings (--no-resume clears it)
  // Set by commands whose outputs for an input depend on that input alone (gradcam, backprop,
  // saliency). Commands that aggregate over all inputs (an embedding, a data-set score) or print
  // per-input results must see every input and leave it false: they never resume.
  bool resumable = false;
  bool html = true;       // write index.html and a small input picture per input next to the manifest
  // The subcommand whose option values (except those listed in resume.cpp as not changing outputs)
  // make the settings fingerprint that decides whether earlier results may be resumed. Set by
  // add_input_options; without it only the manifest's "options" are fingerprinted.
  const CLI::App* command = nullptr;
};
// Registers the inputs, --recursive, --batch-size, --max-pixels, --fit, --shard, --no-resume, --no-html.
void add_input_options(CLI::App* app, InputOptions& options);

struct OutputOptions {
  std::string out = "cnnvis-out";
  std::string colormap = "jet";
  float alpha = 0.5f;
  int display_size = 1024;  // longest side of written overlays; 0 keeps the source size
  bool png16 = false;       // also write each [0,1] map as a 16-bit grayscale PNG
};
void add_output_options(CLI::App* app, OutputOptions& options);

}  // namespace cnnvis::cli
