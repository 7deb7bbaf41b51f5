// Regression of a run against a golden run: outputs are paired through the two manifest.json files
// (same input, same output name), raw maps (.npy) and images are compared within tolerances, and a
// report (JSON + diff images) says what changed. Used by `cnnvis compare`; torch-free.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace cnnvis {

// Map differences are relative to the golden map's largest magnitude (max |golden|), so one set of
// tolerances fits Grad-CAM maps in [0, 1] and raw gradients of 1e-4 alike. Images are compared with
// pixel values scaled to [0, 1] (8-bit: /255, 16-bit: /65535).
struct CompareTolerances {
  double max_diff = 1e-3;        // max |new - golden| / max |golden|, maps
  double mean_diff = 1e-4;       // mean |new - golden| / max |golden|, maps and images
  double min_corr = 0.999;       // Pearson correlation, maps and images
  double image_max_diff = 0.02;  // max pixel difference of images (about 5 levels of 255): a map change
                                 // far below max_diff can still move a pixel across a colormap step
  double probability = 1e-3;     // |new - golden| of the top class probability
};

// Element-wise comparison of two equally shaped arrays. NaNs count as equal when both are NaN.
struct ArrayDifference {
  std::size_t count = 0;
  bool identical = true;   // bit-for-bit equal values (NaN == NaN)
  double scale = 0;        // max |golden| (finite values)
  double max_abs = 0;      // max |new - golden|
  double mean_abs = 0;
  double max_rel = 0;      // max_abs / scale (scale 0: max_abs itself)
  double mean_rel = 0;
  double correlation = 1;  // Pearson; 1 when both arrays are constant and equal, 0 when one is constant
  std::size_t nan_mismatches = 0;  // positions where exactly one of the two is not finite
};
ArrayDifference compare_arrays(const float* golden, const float* fresh, std::size_t count);

struct CompareItem {
  std::string input;        // the pairing key of the input (see compare_runs)
  std::string output;       // output name in the manifest ("overlay", "gradcam.cam", ...); "" for the entry
  std::string kind;         // "map" | "image" | "file" | "predictions" | "status"
  std::string golden_file;  // path relative to the golden directory
  std::string new_file;     // path relative to the new directory
  // "pass" | "differ" | "missing" (in the new run) | "added" (only in the new run) | "shape_mismatch" |
  // "unreadable" (a file cannot be read or decoded)
  std::string status = "pass";
  std::string detail;  // one line for people: what differs and by how much
  std::vector<std::int64_t> golden_shape, new_shape;
  ArrayDifference difference;
  bool compared = false;   // difference holds values
  std::string diff_image;  // relative to the report directory; "" when none was written
};

struct CompareReport {
  std::string golden_dir, new_dir, report_dir;
  CompareTolerances tolerances;
  std::vector<CompareItem> items;
  std::size_t inputs = 0;  // paired inputs
  std::size_t count(const std::string& status) const;
  bool unusable() const;   // a shape mismatch or an unreadable file
  // 0 all pass, 1 some differ / are missing / were added, 2 unusable input.
  int exit_code() const;
  nlohmann::json to_json() const;
};

struct CompareOptions {
  CompareTolerances tolerances;
  std::string report_dir;      // report.json, report.html and diffs/ go here; "" writes nothing
  bool write_diff_images = true;
};

// Compares NEW against GOLDEN. Entries are paired by their "key" (the input path relative to the
// directory argument it came from, which cnnvis records) when both manifests have one, otherwise by
// "input". Throws InputError when a directory or its manifest.json is missing or not a manifest
// (the CLI maps that to exit code 2); per-file problems become items.
CompareReport compare_runs(const std::string& golden_dir, const std::string& new_dir, const CompareOptions& options);

// A few lines for a terminal: counts, then the items that did not pass (at most max_listed).
std::string compare_summary(const CompareReport& report, std::size_t max_listed = 20);

// Makes GOLDEN a copy of NEW's results: manifest.json, every output it lists and index.html. Output
// paths that would leave GOLDEN are stored by file name. Files listed by the previous golden manifest
// and no longer produced are removed. Returns the number of files copied. Throws InputError when NEW
// has no manifest, OutputError when GOLDEN cannot be written.
std::size_t update_golden(const std::string& golden_dir, const std::string& new_dir);

}  // namespace cnnvis
