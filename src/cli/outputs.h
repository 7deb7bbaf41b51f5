// Writing a subcommand's results into its output directory: PNGs and .npy maps recorded in the manifest
// entry, the pictures of a map, maps drawn on the source image, predictions as JSON. CLI layer only: no
// LibTorch here.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core/mat.hpp>

#include "batch_runner.h"
#include "cnnvis/io/colormap.h"
#include "cnnvis/io/manifest.h"
#include "cnnvis/models/loaded_model.h"
#include "options.h"

namespace cnnvis::cli {

// The source image scaled so its longest side is at most display_size (0: unchanged).
cv::Mat display_image(const cv::Mat& rgb, int display_size);

// A map over the model input, put back where the input came from in the source image (map_to_source)
// and resized to `display`, the size of the shown source (display_image): bilinear, or area averaging
// when shrinking and area_when_shrinking (keeps thin, pixel-level structures instead of aliasing them).
cv::Mat map_on_display(const cv::Mat& map, const BatchItem& item, cv::Size display, bool area_when_shrinking = false);

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

}  // namespace cnnvis::cli
