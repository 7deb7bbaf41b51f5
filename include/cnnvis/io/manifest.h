// One manifest.json per run, in the output directory: what ran, on what, and per input what came out.
//
// {
//   "tool": "cnnvis", "version": "0.1.0", "command": "gradcam",
//   "libtorch": "1.13.0", "device": "cpu", "threads": 2,
//   "model": "vgg16", "weights": "/path/vgg16.safetensors", "weights_sha256": "...",
//   "arguments": [...argv...], "options": {...},
//   "started": "2026-11-22T15:00:00Z", "finished": "...",
//   "summary": {"inputs": 3, "ok": 2, "error": 1},
//   "inputs": [
//     {"input": "img/dog.jpg", "status": "ok", "error": null,
//      "outputs": {"heatmap": "dog.gradcam.png", ...},   // relative to the output directory
//      "predictions": [{"index": 5, "label": "dog", "score": 3.2, "probability": 0.91}],
//      "timings_ms": {"load": 3.1, "compute": 40.2}, ...extra fields}
//   ]
// }
#pragma once

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace cnnvis {

struct ManifestEntry {
  std::string input;
  std::string status = "ok";  // "ok" | "error"
  std::string error;
  std::vector<std::pair<std::string, std::string>> outputs;  // name -> path relative to out dir
  nlohmann::json predictions = nlohmann::json::array();
  std::vector<std::pair<std::string, double>> timings_ms;
  nlohmann::json extra = nlohmann::json::object();  // merged into the entry
};

class Manifest {
 public:
  Manifest(std::string out_dir, std::string command);
  nlohmann::json& header() { return header_; }  // free-form run fields (model, device, options...)
  void add(ManifestEntry entry);
  const std::vector<ManifestEntry>& entries() const { return entries_; }
  std::size_t error_count() const;
  nlohmann::json to_json() const;
  // Writes <out_dir>/manifest.json via a temporary file and rename. Throws OutputError.
  void write() const;
  const std::string& out_dir() const { return out_dir_; }

 private:
  std::string out_dir_;
  std::string started_;
  nlohmann::json header_ = nlohmann::json::object();
  std::vector<ManifestEntry> entries_;
};

// The inverse of one element of to_json()["inputs"]: core fields back into their members, every other
// field into extra. Lets a resumed or merged run carry entries of an earlier manifest unchanged.
ManifestEntry manifest_entry_from_json(const nlohmann::json& item);

// Reads a manifest.json; throws InputError naming the file and the problem.
nlohmann::json read_manifest(const std::string& path);
// The same from the manifest's text; `name` is used in messages (the fuzz target calls this).
nlohmann::json parse_manifest(const std::string& text, const std::string& name);

// Creates the output directory (and parents) and checks that it is writable; throws OutputError.
void ensure_output_dir(const std::string& dir);

// Hands out file stems that are unique within one run and can never leave the output directory,
// whatever the input names are ("../../etc/passwd" -> "etc_passwd", duplicates get "-2", "-3").
class OutputNamer {
 public:
  std::string stem_for(const std::string& input_path);

 private:
  std::set<std::string> used_;
};

// Current UTC time as ISO 8601, e.g. 2026-11-22T15:00:00Z.
std::string utc_timestamp();

}  // namespace cnnvis
