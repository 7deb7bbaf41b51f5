#include "batch_runner.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>

#include <spdlog/spdlog.h>

#include "cnnvis/core/batch_retry.h"
#include "cnnvis/core/errors.h"
#include "cnnvis/core/runtime.h"
#include "cnnvis/io/batch.h"
#include "cnnvis/io/html_index.h"
#include "cnnvis/io/inputs.h"
#include "outputs.h"
#include "progress.h"
#include "resume.h"

namespace cnnvis::cli {

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

int batch_exit_code(const Manifest& manifest) { return manifest.error_count() == 0 ? 0 : 1; }

}  // namespace cnnvis::cli
