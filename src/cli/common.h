// Pieces every subcommand shares: option groups, model loading, batched input processing, the run
// manifest and progress on stderr. CLI layer only: no LibTorch here.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <opencv2/core/mat.hpp>

#include "cnnvis/io/colormap.h"
#include "cnnvis/core/runtime.h"
#include "cnnvis/io/image_io.h"
#include "cnnvis/io/manifest.h"
#include "cnnvis/models/loaded_model.h"

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
  // The subcommand whose option values (except those listed in run_batches as not changing outputs)
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

// Configures threads/device from the global options and loads the model.
struct ModelSession {
  RuntimeInfo runtime;
  std::unique_ptr<LoadedModel> model;
};
ModelSession open_model(const ModelOptions& options, bool load_weights = true);

// Fills the manifest's run fields (tool, versions, device, model, weights, arguments).
void describe_run(Manifest& manifest, const ModelSession& session, const nlohmann::json& options);

// One successfully loaded input of a batch.
struct BatchItem {
  std::string path;
  std::string stem;          // unique, safe output file stem
  std::string key;           // names the input whatever the mount and argument order (see InputFile)
  LoadedImage image;         // the decoded source image
  cv::Mat input;             // model input (CV_32FC3 RGB [0,1], card size)
  InputRegion region;        // where the input came from in the source
  ManifestEntry* entry;      // to fill with outputs and predictions
  double load_ms = 0;
};

// Loads inputs batch by batch and calls process on each batch of successfully decoded images. An input
// that fails to load, or a batch whose processing throws a cnnvis::Error other than UsageError, is
// recorded as failed in the manifest and the run goes on. UsageError and OutputError abort the run. Writes the
// manifest at the end (and after every batch, so an interrupted run leaves a valid one). When the
// device runs out of memory, the batch is retried in halves (and later batches stay at the size that
// worked), with a warning.
// With write_manifest it also resumes (inputs.resume), keeps to inputs.shard, records per entry the
// input's key, output stem and file stamp, and writes index.html at the end (inputs.html).
void run_batches(const InputOptions& inputs, const LoadedModel& model, Manifest& manifest,
                 const std::function<void(std::vector<BatchItem>&)>& process, bool write_manifest = true);

// The source image scaled so its longest side is at most display_size (0: unchanged).
cv::Mat display_image(const cv::Mat& rgb, int display_size);

// Writes a PNG into the manifest's directory and records it in entry.outputs under `name`.
void write_output_png(const Manifest& manifest, ManifestEntry& entry, const std::string& name,
                      const std::string& file_name, const cv::Mat& image);
void write_output_npy(const Manifest& manifest, ManifestEntry& entry, const std::string& name,
                      const std::string& file_name, const cv::Mat& map);

// The pictures of a map over the model input (map01 in [0, 1]): "<stem>.<tag>.png" (colour-mapped, at
// input size), "<stem>.<tag>.map16.png" with --png16, and "<stem>.<tag>.overlay.png" on the source image.
void write_map_pictures(const Manifest& manifest, const BatchItem& item, const std::string& tag, const cv::Mat& map01,
                        const OutputOptions& output, Colormap colormap);

nlohmann::json predictions_json(const std::vector<Prediction>& predictions);

// Exit code of a batch command: 0 when every input succeeded, 1 otherwise.
int batch_exit_code(const Manifest& manifest);

// Progress on stderr: a bar when stderr is a terminal, periodic log lines otherwise; silent with --quiet.
// already_done counts work finished before this run (resumed inputs): it shows in the count but not in
// the rate or the ETA. Failed items are shown when there are any.
class Progress {
 public:
  Progress(std::string what, std::size_t total, std::size_t already_done = 0);
  void update(std::size_t done);
  void add_failed(std::size_t n) { failed_ += n; }
  void finish();
  // Time between pause() and resume() (another stage running) counts neither in the rate nor as elapsed.
  void pause();
  void resume();

 private:
  std::string what_;
  std::size_t total_;
  std::size_t already_done_ = 0;
  std::size_t failed_ = 0;
  std::size_t done_ = 0;
  bool tty_;
  std::chrono::steady_clock::time_point start_, last_, paused_at_;
  bool paused_ = false;
};

double elapsed_ms(std::chrono::steady_clock::time_point since);

}  // namespace cnnvis::cli
