// The batch runner every per-image subcommand goes through: inputs loaded batch by batch (decoding
// overlapping compute), failures recorded per input, out-of-memory retries in smaller batches, sharding,
// resuming and the manifest written as it goes. CLI layer only: no LibTorch here.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "cnnvis/io/image_io.h"
#include "cnnvis/io/manifest.h"
#include "cnnvis/models/loaded_model.h"
#include "options.h"

namespace cnnvis::cli {

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

// Exit code of a batch command: 0 when every input succeeded, 1 otherwise.
int batch_exit_code(const Manifest& manifest);

}  // namespace cnnvis::cli
