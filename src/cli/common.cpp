#include "common.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <future>
#include <map>
#include <set>
#include <iostream>

#include <opencv2/imgproc.hpp>
#include <spdlog/spdlog.h>

#include "cnnvis/core/batch_retry.h"
#include "cnnvis/core/errors.h"
#include "cnnvis/core/sha256.h"
#include "cnnvis/io/batch.h"
#include "cnnvis/io/html_index.h"
#include "cnnvis/core/runtime.h"
#include "cnnvis/io/inputs.h"
#include "cnnvis/io/manifest.h"
#include "cnnvis/io/image_io.h"
#include "cnnvis/io/render.h"
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

ModelSession open_model(const ModelOptions& options, bool load_weights) {
  const GlobalOptions& global = global_options();
  ModelSession session;
  session.runtime = configure_runtime({global.device, global.threads, !global.fast, !global.native_kernels});
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
  h["deterministic"] = session.runtime.deterministic;
  h["cpu_convolutions"] = session.runtime.cpu_convolutions;
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

// One input to process: where it is, its key (see InputFile) and its output stem.
struct Task {
  std::string path;
  std::string key;
  std::string stem;
  nlohmann::json stamp;
};

// One batch's inputs, decoded. Heap-allocated so that the items' entry pointers stay valid while the
// batch moves between threads.
struct LoadedBatch {
  std::vector<ManifestEntry> entries;
  std::vector<BatchItem> items;
};

std::unique_ptr<LoadedBatch> load_batch(const std::vector<Task>& tasks, std::size_t first, std::size_t last,
                                        const ImageLimits& limits, FitMode fit, const ModelCard& card) {
  auto batch = std::make_unique<LoadedBatch>();
  batch->entries.resize(last - first);
  for (std::size_t i = first; i < last; ++i) {
    const Task& task = tasks[i];
    ManifestEntry& entry = batch->entries[i - first];
    entry.input = task.path;
    entry.extra["key"] = task.key;
    entry.extra["stem"] = task.stem;
    entry.extra["input_file"] = task.stamp;
    const auto start = std::chrono::steady_clock::now();
    try {
      BatchItem item;
      item.path = task.path;
      item.image = load_image(task.path, limits);
      item.input = prepare_model_input(item.image.rgb, card.input_width, card.input_height, fit, &item.region);
      item.stem = task.stem;
      item.key = task.key;
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

// Options that change how a run goes but never what it writes for an input: they stay out of the
// settings fingerprint, so that e.g. a different batch size or shard still resumes.
bool affects_outputs(const std::string& name) {
  // --weights and --models-dir only say where the weights are: their content is in weights_sha256.
  static const std::set<std::string> kNeutral = {"--help", "--out", "--batch-size", "--shard", "--no-resume",
                                                 "--recursive", "--max-pixels", "--weights", "--models-dir"};
  return kNeutral.count(name) == 0;
}

// What must be equal for an earlier result to stand: command, tool version, model, weights, device and
// every output-affecting option value of the subcommand (given or default).
nlohmann::json settings_fingerprint(const InputOptions& inputs, Manifest& manifest) {
  nlohmann::json fields = nlohmann::json::object();
  const nlohmann::json& h = manifest.header();
  for (const char* key : {"command", "version", "model", "weights_sha256", "device", "deterministic", "cpu_convolutions"}) {
    if (h.contains(key)) fields[key] = h[key];
  }
  nlohmann::json options = nlohmann::json::object();
  if (inputs.command != nullptr) {
    for (const CLI::Option* opt : inputs.command->get_options()) {
      if (!opt->nonpositional()) continue;  // the inputs themselves
      const std::string name = opt->get_name();
      if (!affects_outputs(name)) continue;
      options[name] = opt->count() > 0 ? nlohmann::json(opt->results()) : nlohmann::json(opt->get_default_str());
    }
  } else if (h.contains("options")) {
    options = h["options"];
  }
  fields["options"] = options;
  const std::string text = fields.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return {{"sha256", sha256_hex(text.data(), text.size())}, {"fields", fields}};
}

// Earlier entries of this output directory made with the same settings, by key; empty when there is
// no earlier manifest, it is unreadable, or its settings differ (then everything is recomputed).
std::map<std::string, nlohmann::json> resumable_entries(const std::string& out_dir, const nlohmann::json& fingerprint) {
  std::map<std::string, nlohmann::json> out;
  const std::filesystem::path path = std::filesystem::path(out_dir) / "manifest.json";
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return out;
  nlohmann::json previous;
  try {
    previous = read_manifest(path.string());
  } catch (const InputError& e) {
    spdlog::warn("{}; not resuming", e.what());
    return out;
  }
  const nlohmann::json old = previous.contains("fingerprint") && previous["fingerprint"].is_object()
                                 ? previous["fingerprint"].value("sha256", std::string()) : std::string();
  if (old != fingerprint["sha256"].get<std::string>()) {
    spdlog::info("{}: earlier results were made with other settings; computing every input", path.string());
    return out;
  }
  for (const auto& e : previous["inputs"]) {
    if (e.is_object() && e.contains("key") && e["key"].is_string()) out.emplace(e["key"].get<std::string>(), e);
  }
  return out;
}

// A small picture of the input for index.html (JPEG: photos stay small), longest side at most 512.
void write_input_picture(const Manifest& manifest, BatchItem& item) {
  const std::string name = item.stem + ".input.jpg";
  // write_png encodes by extension; OpenCV writes JPEG for ".jpg".
  write_png((std::filesystem::path(manifest.out_dir()) / name).string(), display_image(item.image.rgb, 512));
  item.entry->outputs.emplace(item.entry->outputs.begin(), "input", name);
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
  const std::vector<InputFile> files = collect_input_files(inputs.inputs, inputs.recursive, std::cin);
  if (files.empty()) throw UsageError("no input images found in the given arguments");
  const Shard shard = parse_shard(inputs.shard.empty() ? "0/1" : inputs.shard);
  const FitMode fit = parse_fit_mode(inputs.fit);
  ImageLimits limits;
  limits.max_pixels = inputs.max_pixels;
  const ModelCard& card = model.card();

  // Stems come from every input of the run, before sharding, so shards name their outputs alike.
  std::vector<std::string> keys;
  for (const auto& f : files) keys.push_back(f.key);
  const std::vector<std::string> stems = assign_output_stems(keys);
  const nlohmann::json fingerprint = settings_fingerprint(inputs, manifest);
  manifest.header()["fingerprint"] = fingerprint;
  if (!shard.all()) {
    manifest.header()["shard"] = {{"index", shard.index}, {"count", shard.count}, {"inputs_in_all_shards", files.size()}};
  }
  std::map<std::string, nlohmann::json> earlier;
  if (write_manifest && inputs.resume && inputs.resumable) earlier = resumable_entries(manifest.out_dir(), fingerprint);

  // Entries are added in input order: `done` holds the resumed ones until their turn comes.
  std::vector<Task> tasks;
  std::vector<std::pair<std::size_t, ManifestEntry>> done;  // (number of tasks before it, entry)
  std::size_t selected = 0;
  for (std::size_t i = 0; i < files.size(); ++i) {
    if (shard_of(files[i].key, shard.count) != shard.index) continue;
    ++selected;
    Task task{files[i].path, files[i].key, stems[i], input_stamp(files[i].path)};
    auto found = earlier.find(task.key);
    if (found != earlier.end() && entry_is_complete(found->second, manifest.out_dir(), task.stamp)) {
      done.emplace_back(tasks.size(), manifest_entry_from_json(found->second));
    } else {
      tasks.push_back(std::move(task));
    }
  }
  if (!shard.all()) spdlog::info("shard {}/{}: {} of {} inputs", shard.index, shard.count, selected, files.size());
  if (!done.empty()) spdlog::info("resuming: {} of {} inputs already done in {}", done.size(), selected, manifest.out_dir());
  std::size_t next_done = 0;
  auto add_done_before = [&](std::size_t task_index) {
    while (next_done < done.size() && done[next_done].first <= task_index) manifest.add(std::move(done[next_done++].second));
  };

  Progress progress("images", selected, done.size());
  const std::size_t step = static_cast<std::size_t>(inputs.batch_size);
  auto load = [&](std::size_t first) {
    return load_batch(tasks, first, std::min(tasks.size(), first + step), limits, fit, card);
  };
  std::size_t chunk = step;  // shrinks for good when the device runs out of memory
  // Decoding of the next batch overlaps the compute of this one; at most two batches are in memory.
  std::future<std::unique_ptr<LoadedBatch>> next;
  if (!tasks.empty()) next = std::async(std::launch::async, load, 0);
  for (std::size_t first = 0; first < tasks.size(); first += step) {
    std::unique_ptr<LoadedBatch> batch = next.get();
    if (first + step < tasks.size()) next = std::async(std::launch::async, load, first + step);
    if (!batch->items.empty()) {
      const auto start = std::chrono::steady_clock::now();
      std::vector<char> finished(batch->items.size(), 0);
      try {
        chunk = process_with_retry(batch->items, chunk, process, finished);
        if (write_manifest && inputs.html) {
          for (auto& item : batch->items) write_input_picture(manifest, item);
        }
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
          if (finished[i]) continue;
          batch->items[i].entry->status = "error";
          batch->items[i].entry->error = batch->items[i].path + ": " + message;
          ++failed;
        }
        spdlog::error("batch of {} image(s) failed: {}", failed, message);
      }
    }
    for (std::size_t i = 0; i < batch->entries.size(); ++i) {
      add_done_before(first + i);
      if (batch->entries[i].status != "ok") progress.add_failed(1);
      manifest.add(std::move(batch->entries[i]));
    }
    if (write_manifest) manifest.write();
    progress.update(done.size() + std::min(tasks.size(), first + step));
  }
  add_done_before(tasks.size());
  if (write_manifest) {
    manifest.write();
    if (inputs.html) write_index_html(manifest.out_dir());
  }
  if (tasks.empty()) progress.update(selected);  // everything resumed: the bar still shows the count
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

void write_map_pictures(const Manifest& manifest, const BatchItem& item, const std::string& tag, const cv::Mat& map01,
                        const OutputOptions& output, Colormap colormap) {
  ManifestEntry& entry = *item.entry;
  write_output_png(manifest, entry, "map", item.stem + "." + tag + ".png", apply_colormap(map01, colormap));
  if (output.png16) {
    const std::string name = item.stem + "." + tag + ".map16.png";
    write_png16((std::filesystem::path(manifest.out_dir()) / name).string(), map01);
    entry.outputs.emplace_back("map16", name);
  }
  const cv::Mat source = display_image(item.image.rgb, output.display_size);
  const cv::Mat on_source = map_to_source(map01, item.region, item.image.rgb.size());
  cv::Mat shown;
  cv::resize(on_source, shown, source.size(), 0, 0, cv::INTER_LINEAR);
  write_output_png(manifest, entry, "overlay", item.stem + "." + tag + ".overlay.png",
                   overlay_heatmap(source, shown, colormap, output.alpha));
}

nlohmann::json predictions_json(const std::vector<Prediction>& predictions) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& p : predictions) {
    out.push_back({{"index", p.index}, {"label", p.label}, {"logit", p.logit}, {"probability", p.probability}});
  }
  return out;
}

int batch_exit_code(const Manifest& manifest) { return manifest.error_count() == 0 ? 0 : 1; }

Progress::Progress(std::string what, std::size_t total, std::size_t already_done)
    : what_(std::move(what)), total_(total), already_done_(already_done), done_(already_done),
      tty_(isatty(STDERR_FILENO) != 0), start_(std::chrono::steady_clock::now()), last_(start_) {}

namespace {
std::string duration_text(double seconds) {
  if (!(seconds >= 0) || seconds > 1e7) return "?";
  const long s = static_cast<long>(seconds + 0.5);
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return std::to_string(s / 60) + "m" + (s % 60 < 10 ? "0" : "") + std::to_string(s % 60) + "s";
  return std::to_string(s / 3600) + "h" + (s / 60 % 60 < 10 ? "0" : "") + std::to_string(s / 60 % 60) + "m";
}
}  // namespace

void Progress::update(std::size_t done) {
  if (done == done_ && done != total_) return;
  const bool finished_now = done == total_ && done_ != total_;
  done_ = done;
  if (global_options().quiet) return;
  const auto now = std::chrono::steady_clock::now();
  const double seconds = std::chrono::duration<double>(now - start_).count();
  // Resumed items cost nothing: the rate and the ETA count only the work done by this run.
  const std::size_t worked = done > already_done_ ? done - already_done_ : 0;
  // Under a tenth of a second the rate is noise (the first update of a fast stage read 5e7/s).
  const double rate = seconds >= 0.1 ? worked / seconds : 0;
  const std::string eta = rate > 0 ? duration_text((total_ - done) / rate) : "?";
  const std::string failed = failed_ > 0 ? ", " + std::to_string(failed_) + " failed" : "";
  if (tty_) {
    const int width = 30;
    const int filled = total_ ? static_cast<int>(width * done / total_) : width;
    std::fprintf(stderr, "\r[%s%s] %zu/%zu %s%s  %.1f/s  ETA %s  elapsed %s ", std::string(filled, '#').c_str(),
                 std::string(width - filled, '.').c_str(), done, total_, what_.c_str(), failed.c_str(), rate, eta.c_str(),
                 duration_text(seconds).c_str());
    std::fflush(stderr);
  } else if (std::chrono::duration<double>(now - last_).count() >= 5.0 || finished_now) {
    spdlog::info("{}/{} {}{} ({:.1f}/s, ETA {}, elapsed {})", done, total_, what_, failed, rate, eta, duration_text(seconds));
    last_ = now;
  }
}

void Progress::pause() {
  if (paused_) return;
  paused_ = true;
  paused_at_ = std::chrono::steady_clock::now();
  finish();  // ends the terminal line; the next update starts a new one
}

void Progress::resume() {
  if (!paused_) return;
  paused_ = false;
  start_ += std::chrono::steady_clock::now() - paused_at_;
}

void Progress::finish() {
  if (tty_ && !global_options().quiet && done_ > 0) std::fprintf(stderr, "\n");
}

}  // namespace cnnvis::cli
