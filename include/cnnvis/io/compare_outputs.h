// One output of a golden-run comparison at a time: a .npy map or an image within the tolerances (and a
// difference picture when it differs), any other file byte for byte, and the top predicted class.
// compare_runs (compare.h) pairs the runs' inputs and outputs and hands each pair to these.
#pragma once

#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "cnnvis/io/compare.h"

namespace cnnvis {

// Whether a file name is compared as an image (PNG, JPEG, BMP, TIFF, WebP), by its extension.
bool is_image_file(const std::string& path);

class OutputComparer {
 public:
  // The directories are the two runs'; options.report_dir (if set) receives diffs/<name>.diff.png.
  OutputComparer(const std::string& golden_dir, const std::string& new_dir, const CompareOptions& options)
      : golden_dir_(golden_dir), new_dir_(new_dir), options_(options) {}

  // item.golden_file and item.new_file are relative to the runs' directories; appends item to report
  // with its kind, status, detail, shapes and differences filled in.
  void compare_file(CompareReport& report, CompareItem item);

 private:
  std::string golden_dir_, new_dir_;
  const CompareOptions& options_;
  std::set<std::string> used_names_;  // difference pictures already written
};

// Appends a "predictions" item when the golden entry has predictions: the top class must be the same
// and its probability within tol.probability.
void compare_predictions(CompareReport& report, const std::string& key, const nlohmann::json& golden,
                         const nlohmann::json& fresh, const CompareTolerances& tol);

}  // namespace cnnvis
