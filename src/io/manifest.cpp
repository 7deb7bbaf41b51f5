// manifest.json for every run, output-directory setup and collision-free output names.
#include "cnnvis/io/manifest.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cnnvis/core/errors.h"
#include "cnnvis/core/text.h"
#include "cnnvis/io/files.h"

namespace cnnvis {

namespace fs = std::filesystem;

namespace {

// Input paths are arbitrary bytes on Linux; a manifest must still be written, so invalid UTF-8 is
// replaced (U+FFFD) instead of making dump() throw.
std::string dump_json(const nlohmann::json& j) {
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}


}  // namespace

Manifest::Manifest(std::string out_dir, std::string command) : out_dir_(std::move(out_dir)), started_(utc_timestamp()) {
  header_["command"] = std::move(command);
}

void Manifest::add(ManifestEntry entry) { entries_.push_back(std::move(entry)); }

std::size_t Manifest::error_count() const {
  std::size_t n = 0;
  for (const ManifestEntry& e : entries_) {
    if (e.status != "ok") ++n;
  }
  return n;
}

nlohmann::json Manifest::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  j["tool"] = "cnnvis";
  // Free-form run fields (version, model, device, options...) come from the caller.
  for (auto it = header_.begin(); it != header_.end(); ++it) j[it.key()] = it.value();
  j["started"] = started_;
  j["finished"] = utc_timestamp();

  nlohmann::json inputs = nlohmann::json::array();
  for (const ManifestEntry& e : entries_) {
    nlohmann::json item = nlohmann::json::object();
    // Extra fields first, so that they can add to an entry but never replace its core fields.
    if (e.extra.is_object()) {
      for (auto it = e.extra.begin(); it != e.extra.end(); ++it) item[it.key()] = it.value();
    }
    item["input"] = e.input;
    item["status"] = e.status;
    item["error"] = e.status == "ok" && e.error.empty() ? nlohmann::json(nullptr) : nlohmann::json(e.error);
    nlohmann::json outputs = nlohmann::json::object();
    for (const auto& [name, path] : e.outputs) outputs[name] = path;
    item["outputs"] = std::move(outputs);
    item["predictions"] = e.predictions;
    nlohmann::json timings = nlohmann::json::object();
    for (const auto& [name, ms] : e.timings_ms) timings[name] = ms;
    item["timings_ms"] = std::move(timings);
    inputs.push_back(std::move(item));
  }
  const std::size_t errors = error_count();
  j["summary"] = {{"inputs", entries_.size()}, {"ok", entries_.size() - errors}, {"error", errors}};
  j["inputs"] = std::move(inputs);
  return j;
}

ManifestEntry manifest_entry_from_json(const nlohmann::json& item) {
  ManifestEntry e;
  if (!item.is_object()) return e;
  for (auto it = item.begin(); it != item.end(); ++it) {
    const std::string& key = it.key();
    const nlohmann::json& v = it.value();
    if (key == "input") {
      if (v.is_string()) e.input = v.get<std::string>();
    } else if (key == "status") {
      if (v.is_string()) e.status = v.get<std::string>();
    } else if (key == "error") {
      if (v.is_string()) e.error = v.get<std::string>();
    } else if (key == "outputs") {
      if (!v.is_object()) continue;
      for (auto o = v.begin(); o != v.end(); ++o) {
        if (o.value().is_string()) e.outputs.emplace_back(o.key(), o.value().get<std::string>());
      }
    } else if (key == "predictions") {
      e.predictions = v;
    } else if (key == "timings_ms") {
      if (!v.is_object()) continue;
      for (auto t = v.begin(); t != v.end(); ++t) {
        if (t.value().is_number()) e.timings_ms.emplace_back(t.key(), t.value().get<double>());
      }
    } else {
      e.extra[key] = v;
    }
  }
  return e;
}

void Manifest::write() const {
  write_text_atomically((fs::path(out_dir_) / "manifest.json").string(), dump_json(to_json()));
}

nlohmann::json parse_manifest(const std::string& text, const std::string& name) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw InputError(name + ": not valid JSON (at byte " + std::to_string(e.byte) + ")");
  } catch (const nlohmann::json::out_of_range&) {
    // nlohmann throws this (not parse_error) for a number beyond double's range, e.g. 1e999.
    throw InputError(name + ": not valid JSON (a number is out of range)");
  }
  if (!j.is_object()) throw InputError(name + ": not a manifest (expected a JSON object)");
  if (!j.contains("inputs") || !j["inputs"].is_array()) throw InputError(name + ": not a manifest (no 'inputs' list)");
  return j;
}

nlohmann::json read_manifest(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw InputError(path + ": is a directory, not a manifest");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot read (" + std::strerror(errno) + ")");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return parse_manifest(buffer.str(), path);
}

void ensure_output_dir(const std::string& dir) {
  if (dir.empty()) throw OutputError("(empty path): cannot create output directory (no path given)");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw OutputError(dir + ": cannot create output directory (" + ec.message() + ")");
  if (!fs::is_directory(dir, ec)) {
    throw OutputError(dir + ": cannot create output directory (a file of that name exists)");
  }
  // Permission bits do not tell the whole story (read-only mounts, ACLs, root), so actually try.
  const std::string probe =
      (fs::path(dir) / (".cnnvis-write-probe-" + std::to_string(static_cast<long>(::getpid())))).string();
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    throw OutputError(dir + ": output directory is not writable (" + std::strerror(errno) + ")");
  }
  ::close(fd);
  ::unlink(probe.c_str());
}

std::string OutputNamer::stem_for(const std::string& input_path) {
  // Only the file name is used: directories in the input path never reach the output path.
  std::string stem = fs::path(input_path).stem().string();
  if (stem.empty() || stem == "." || stem == "..") stem = "input";
  const std::string base = safe_file_stem(stem);
  // Compared case-insensitively: the output directory may be on a case-insensitive file system.
  std::string candidate = base;
  for (int n = 2; used_.count(to_lower(candidate)) != 0; ++n) candidate = base + "-" + std::to_string(n);
  used_.insert(to_lower(candidate));
  return candidate;
}

std::string utc_timestamp() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace cnnvis
