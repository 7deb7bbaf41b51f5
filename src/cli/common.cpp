#include "common.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <future>
#include <iostream>

#include <opencv2/imgproc.hpp>
#include <spdlog/spdlog.h>

#include "cnnvis/core/batch_retry.h"
#include "cnnvis/core/errors.h"
#include "cnnvis/core/runtime.h"
#include "cnnvis/io/inputs.h"
#include "cnnvis/io/npy.h"

#ifndef CNNVIS_VERSION
#define CNNVIS_VERSION "dev"
#endif

namespace cnnvis::cli {

GlobalOptions& global_options() {
  static GlobalOptions options;
  return options;
}

void add_model_options(CLI::App* app, ModelOptions& options, const std::string& default_model) {
  options.model = default_model;
  auto* model = app->add_option("-m,--model", options.model, "model: vgg16, googlenet, fashion_vgg (see `cnnvis models`)");
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
}

void add_output_options(CLI::App* app, OutputOptions& options) {
  app->add_option("-o,--out", options.out, "output directory");
  app->add_option("--colormap", options.colormap, "jet | turbo | viridis | inferno | gray | diverging");
  app->add_option("--alpha", options.alpha, "heatmap weight in overlays")->check(CLI::Range(0.0f, 1.0f));
  app->add_option("--display-size", options.display_size,
                  "longest side of written overlays in pixels (0 = source size)")->check(CLI::NonNegativeNumber);
  app->add_flag("--png16", options.png16, "also write each map as a 16-bit grayscale PNG (model-input resolution)");
}

ModelSession open_model(const ModelOptions& options, bool load_weights) {
  const GlobalOptions& global = global_options();
  ModelSession session;
  session.runtime = configure_runtime({global.device, global.threads});
  ModelLoadOptions load;
  load.model = options.model;
  load.weights = options.weights;
  load.card = options.card;
  load.models_dir = options.models_dir;
  load.device = session.runtime.device;
  load.strict = !options.lenient;
  load.load_weights = load_weights;
  const auto start = std::chrono::steady_clock::now();
  session.model = std::make_unique<LoadedModel>(LoadedModel::load(load));
  spdlog::info("model {} on {} ({} threads){} in {:.0f} ms", options.model, session.runtime.device,
               session.runtime.threads,
               session.model->weights_path().empty() ? "" : ", weights " + session.model->weights_path(),
               elapsed_ms(start));
  return session;
}

void describe_run(Manifest& manifest, const ModelSession& session, const nlohmann::json& options) {
  auto& h = manifest.header();
  h["tool"] = "cnnvis";
  h["version"] = CNNVIS_VERSION;
  h["libtorch"] = session.runtime.libtorch_version;
  h["device"] = session.runtime.device;
  h["threads"] = session.runtime.threads;
  if (session.model) {
    h["model"] = session.model->card().name;
    h["model_card"] = session.model->card().card_path;
    h["weights"] = session.model->weights_path();
    h["weights_sha256"] = session.model->weights_sha256();
  }
  h["arguments"] = global_options().argv;
  h["options"] = options;
}

double elapsed_ms(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - since).count();
}

namespace {

// One batch's inputs, decoded. Heap-allocated so that the items' entry pointers stay valid while the
// batch moves between threads.
struct LoadedBatch {
  std::vector<ManifestEntry> entries;
  std::vector<BatchItem> items;
};

std::unique_ptr<LoadedBatch> load_batch(const std::vector<std::string>& paths, std::size_t first, std::size_t last,
                                        const ImageLimits& limits, FitMode fit, const ModelCard& card,
                                        OutputNamer& namer) {
  auto batch = std::make_unique<LoadedBatch>();
  batch->entries.resize(last - first);
  for (std::size_t i = first; i < last; ++i) {
    ManifestEntry& entry = batch->entries[i - first];
    entry.input = paths[i];
    const auto start = std::chrono::steady_clock::now();
    try {
      BatchItem item;
      item.path = paths[i];
      item.image = load_image(paths[i], limits);
      item.input = prepare_model_input(item.image.rgb, card.input_width, card.input_height, fit, &item.region);
      item.stem = namer.stem_for(paths[i]);
      item.load_ms = elapsed_ms(start);
      item.entry = &entry;
      entry.timings_ms.emplace_back("load", item.load_ms);
      batch->items.push_back(std::move(item));
    } catch (const InputError& e) {
      entry.status = "error";
      entry.error = e.what();
      spdlog::error("{}", e.what());
    }
  }
  return batch;
}

// Test hook: with CNNVIS_TEST_OOM_ABOVE=N in the environment, any chunk of more than N images fails as
// if the device had run out of memory. Lets the end-to-end tests exercise the retry path without a GPU.
std::size_t injected_oom_limit() {
  const char* text = std::getenv("CNNVIS_TEST_OOM_ABOVE");
  if (text == nullptr || *text == '\0') return 0;
  return static_cast<std::size_t>(std::strtoull(text, nullptr, 10));
}

// Runs process on the batch; when the device runs out of memory, on halves of it, and so on down to
// one image. Returns the chunk size that worked, for the next batch.
// done[i] is set once items[i] is finished, so that a later failure in the same batch keeps its results.
std::size_t process_with_retry(std::vector<BatchItem>& items, std::size_t max_chunk,
                               const std::function<void(std::vector<BatchItem>&)>& process, std::vector<char>& done) {
  const std::size_t oom_above = injected_oom_limit();
  return run_with_batch_halving(
      items.size(), max_chunk,
      [&](std::size_t first, std::size_t last) {
        if (oom_above > 0 && last - first > oom_above) {
          throw OutOfMemoryError("injected out-of-memory for a chunk of " + std::to_string(last - first) + " images");
        }
        if (first == 0 && last == items.size()) {
          translate_out_of_memory([&] { process(items); });
        } else {
          std::vector<BatchItem> chunk(std::make_move_iterator(items.begin() + first),
                                       std::make_move_iterator(items.begin() + last));
          struct MoveBack {
            std::vector<BatchItem>& chunk;
            std::vector<BatchItem>& items;
            std::size_t first;
            ~MoveBack() { std::move(chunk.begin(), chunk.end(), items.begin() + first); }
          } move_back{chunk, items, first};
          translate_out_of_memory([&] { process(chunk); });
        }
        std::fill(done.begin() + first, done.begin() + last, 1);
      },
      [&](std::size_t failed_size, std::size_t new_size, const std::string& message) {
        spdlog::warn("out of memory on a batch of {} image(s); retrying in batches of {} ({})", failed_size, new_size,
                     message);
        // Whatever the failed attempt recorded is discarded; the retry writes it again.
        for (std::size_t i = 0; i < items.size(); ++i) {
          if (done[i]) continue;
          items[i].entry->outputs.clear();
          items[i].entry->predictions = nlohmann::json::array();
        }
      });
}

}  // namespace

void run_batches(const InputOptions& inputs, const LoadedModel& model, Manifest& manifest,
                 const std::function<void(std::vector<BatchItem>&)>& process, bool write_manifest) {
  const std::vector<std::string> paths = collect_inputs(inputs.inputs, inputs.recursive, std::cin);
  if (paths.empty()) throw UsageError("no input images found in the given arguments");
  const FitMode fit = parse_fit_mode(inputs.fit);
  ImageLimits limits;
  limits.max_pixels = inputs.max_pixels;
  const ModelCard& card = model.card();
  OutputNamer namer;  // used by the loading thread only, one batch at a time, in input order
  Progress progress("images", paths.size());
  const std::size_t step = static_cast<std::size_t>(inputs.batch_size);
  auto load = [&](std::size_t first) {
    return load_batch(paths, first, std::min(paths.size(), first + step), limits, fit, card, namer);
  };
  std::size_t chunk = step;  // shrinks for good when the device runs out of memory
  // Decoding of the next batch overlaps the compute of this one; at most two batches are in memory.
  std::future<std::unique_ptr<LoadedBatch>> next = std::async(std::launch::async, load, 0);
  for (std::size_t first = 0; first < paths.size(); first += step) {
    std::unique_ptr<LoadedBatch> batch = next.get();
    if (first + step < paths.size()) next = std::async(std::launch::async, load, first + step);
    if (!batch->items.empty()) {
      const auto start = std::chrono::steady_clock::now();
      std::vector<char> done(batch->items.size(), 0);
      try {
        chunk = process_with_retry(batch->items, chunk, process, done);
        const double per_image = elapsed_ms(start) / batch->items.size();
        for (auto& item : batch->items) item.entry->timings_ms.emplace_back("compute_and_write", per_image);
      } catch (const UsageError&) {
        if (next.valid()) next.wait();
        throw;
      } catch (const OutputError&) {
        // The output directory stopped taking files (disk full, removed, file size limit): every later
        // input would fail the same way, so the run stops with this one message.
        if (next.valid()) next.wait();
        throw;
      } catch (const std::exception& e) {
        // A library error, or LibTorch failing on this batch (e.g. out of memory even for one image):
        // record it per input and go on with the next batch. Only the first line of a LibTorch message
        // is kept. Inputs of the batch that were finished before the failure keep their results.
        std::string message = e.what();
        if (auto nl = message.find('\n'); nl != std::string::npos) message.resize(nl);
        std::size_t failed = 0;
        for (std::size_t i = 0; i < batch->items.size(); ++i) {
          if (done[i]) continue;
          batch->items[i].entry->status = "error";
          batch->items[i].entry->error = batch->items[i].path + ": " + message;
          ++failed;
        }
        spdlog::error("batch of {} image(s) failed: {}", failed, message);
      }
    }
    for (auto& entry : batch->entries) manifest.add(std::move(entry));
    if (write_manifest) manifest.write();
    progress.update(std::min(paths.size(), first + step));
  }
  progress.finish();
}

cv::Mat display_image(const cv::Mat& rgb, int display_size) {
  const int longest = std::max(rgb.cols, rgb.rows);
  if (display_size <= 0 || longest <= display_size) return rgb;
  const double scale = static_cast<double>(display_size) / longest;
  cv::Mat out;
  cv::resize(rgb, out, cv::Size(), scale, scale, cv::INTER_AREA);
  return out;
}

void write_output_png(const Manifest& manifest, ManifestEntry& entry, const std::string& name,
                      const std::string& file_name, const cv::Mat& image) {
  write_png((std::filesystem::path(manifest.out_dir()) / file_name).string(), image);
  entry.outputs.emplace_back(name, file_name);
}

void write_output_npy(const Manifest& manifest, ManifestEntry& entry, const std::string& name,
                      const std::string& file_name, const cv::Mat& map) {
  write_npy((std::filesystem::path(manifest.out_dir()) / file_name).string(), map);
  entry.outputs.emplace_back(name, file_name);
}

nlohmann::json predictions_json(const std::vector<Prediction>& predictions) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& p : predictions) {
    out.push_back({{"index", p.index}, {"label", p.label}, {"logit", p.logit}, {"probability", p.probability}});
  }
  return out;
}

int batch_exit_code(const Manifest& manifest) { return manifest.error_count() == 0 ? 0 : 1; }

Progress::Progress(std::string what, std::size_t total)
    : what_(std::move(what)), total_(total), tty_(isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()), last_(start_) {}

void Progress::update(std::size_t done) {
  done_ = done;
  if (global_options().quiet) return;
  const auto now = std::chrono::steady_clock::now();
  const double seconds = std::chrono::duration<double>(now - start_).count();
  const double rate = seconds > 0 ? done / seconds : 0;
  const double eta = rate > 0 ? (total_ - done) / rate : 0;
  if (tty_) {
    const int width = 30;
    const int filled = total_ ? static_cast<int>(width * done / total_) : width;
    std::fprintf(stderr, "\r[%s%s] %zu/%zu %s  %.1f/s  ETA %.0fs ", std::string(filled, '#').c_str(),
                 std::string(width - filled, '.').c_str(), done, total_, what_.c_str(), rate, eta);
    std::fflush(stderr);
  } else if (std::chrono::duration<double>(now - last_).count() >= 5.0 || done == total_) {
    spdlog::info("{}/{} {} ({:.1f}/s, ETA {:.0f} s)", done, total_, what_, rate, eta);
    last_ = now;
  }
}

void Progress::finish() {
  if (tty_ && !global_options().quiet && done_ > 0) std::fprintf(stderr, "\n");
}

}  // namespace cnnvis::cli
