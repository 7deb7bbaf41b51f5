// Output names, shards, resume checks and manifest merging for batch runs.
#include "cnnvis/io/batch.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/core/sha256.h"
#include "cnnvis/core/text.h"
#include "cnnvis/io/files.h"
#include "cnnvis/io/html_index.h"
#include "cnnvis/io/manifest.h"

namespace cnnvis {

namespace fs = std::filesystem;

namespace {

std::string base_stem(const std::string& key) {
  std::string stem = fs::path(key).stem().string();
  if (stem.empty() || stem == "." || stem == "..") stem = "input";
  return safe_file_stem(stem);
}

std::string dump(const nlohmann::json& j) { return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n"; }

}  // namespace

std::vector<std::string> assign_output_stems(const std::vector<std::string>& keys) {
  std::vector<std::string> stems(keys.size());
  std::map<std::string, int> users;  // lower-cased base stem -> number of inputs wanting it
  for (const auto& key : keys) ++users[to_lower(base_stem(key))];
  std::set<std::string> taken;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    std::string stem = base_stem(keys[i]);
    if (users[to_lower(stem)] > 1) stem += "-" + sha256_hex(keys[i].data(), keys[i].size()).substr(0, 8);
    // A hashed name can only clash with another input literally called like it; counters settle that.
    const std::string base = stem;
    for (int n = 2; taken.count(to_lower(stem)) != 0; ++n) stem = base + "-" + std::to_string(n);
    taken.insert(to_lower(stem));
    stems[i] = stem;
  }
  return stems;
}

Shard parse_shard(const std::string& text) {
  const auto parts = split(text, '/');
  auto number = [&](const std::string& s) {
    if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos) {
      throw UsageError("--shard " + text + ": expected I/N with whole numbers, 0 <= I < N (e.g. 0/4)");
    }
    return std::stoi(s);
  };
  if (parts.size() != 2) throw UsageError("--shard " + text + ": expected I/N, e.g. 0/4 (shards are numbered from 0)");
  Shard shard{number(parts[0]), number(parts[1])};
  if (shard.count < 1) throw UsageError("--shard " + text + ": N must be at least 1");
  if (shard.index >= shard.count) {
    throw UsageError("--shard " + text + ": I must be below N (shards are numbered 0 to " + std::to_string(shard.count - 1) + ")");
  }
  return shard;
}

int shard_of(const std::string& key, int count) {
  if (count <= 1) return 0;
  const std::string hex = sha256_hex(key.data(), key.size());
  const std::uint64_t h = std::stoull(hex.substr(0, 16), nullptr, 16);
  return static_cast<int>(h % static_cast<std::uint64_t>(count));
}

nlohmann::json input_stamp(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return nullptr;
  const std::int64_t mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
  return {{"bytes", static_cast<std::uint64_t>(st.st_size)}, {"mtime_ns", mtime_ns}};
}

bool path_stays_inside(const std::string& relative) {
  if (relative.empty()) return false;
  const fs::path p = fs::path(relative).lexically_normal();
  if (p.empty() || p.is_absolute() || p.has_root_name()) return false;
  const std::string first = p.begin()->string();
  return first != ".." && first != ".";
}

bool entry_is_complete(const nlohmann::json& entry, const std::string& out_dir, const nlohmann::json& stamp) {
  if (!entry.is_object() || entry.value("status", std::string()) != "ok") return false;
  if (stamp.is_null() || !entry.contains("input_file") || entry["input_file"] != stamp) return false;
  if (!entry.contains("outputs") || !entry["outputs"].is_object()) return false;
  for (auto it = entry["outputs"].begin(); it != entry["outputs"].end(); ++it) {
    if (!it.value().is_string() || !path_stays_inside(it.value().get<std::string>())) return false;
    std::error_code ec;
    const fs::path file = fs::path(out_dir) / it.value().get<std::string>();
    if (!fs::is_regular_file(file, ec) || fs::file_size(file, ec) == 0 || ec) return false;
  }
  return true;
}

MergeResult merge_manifests(const std::vector<std::string>& part_dirs, const std::string& out_dir, const MergeOptions& options) {
  if (part_dirs.empty()) throw UsageError("merge-manifests: no parts given");
  std::error_code ec;
  const fs::path out_abs = fs::weakly_canonical(fs::absolute(out_dir, ec), ec);
  std::vector<nlohmann::json> parts;
  for (const auto& dir : part_dirs) {
    const fs::path manifest = fs::path(dir) / "manifest.json";
    if (!fs::exists(manifest, ec)) throw InputError(manifest.string() + ": missing (not a cnnvis output directory?)");
    if (fs::weakly_canonical(fs::absolute(dir, ec), ec) == out_abs) {
      throw UsageError(dir + ": the merged directory must not be one of the parts");
    }
    parts.push_back(read_manifest(manifest.string()));
  }
  MergeResult result;
  result.parts = parts.size();
  const nlohmann::json& first = parts.front();
  auto fingerprint = [](const nlohmann::json& m) {
    return m.contains("fingerprint") && m["fingerprint"].is_object() ? m["fingerprint"].value("sha256", std::string()) : std::string();
  };
  for (std::size_t i = 1; i < parts.size() && !options.force; ++i) {
    if (parts[i].value("command", std::string()) != first.value("command", std::string())) {
      throw UsageError(fmt::format("{} ran '{}' but {} ran '{}'; merge runs of one command (or --force)", part_dirs[i],
                                   parts[i].value("command", std::string()), part_dirs[0], first.value("command", std::string())));
    }
    if (fingerprint(parts[i]) != fingerprint(first)) {
      throw UsageError(fmt::format("{} and {} were run with different settings (fingerprint differs); --force merges anyway",
                                   part_dirs[i], part_dirs[0]));
    }
  }
  ensure_output_dir(out_dir);

  nlohmann::json merged = nlohmann::json::object();
  for (auto it = first.begin(); it != first.end(); ++it) {
    if (it.key() != "inputs" && it.key() != "summary" && it.key() != "shard") merged[it.key()] = it.value();
  }
  std::string started, finished;
  std::set<int> covered;
  int shard_count = 0;
  nlohmann::json sources = nlohmann::json::array();
  nlohmann::json inputs = nlohmann::json::array();
  std::map<std::string, std::size_t> position;  // pairing key -> index in kept_entries
  std::vector<std::pair<nlohmann::json, std::string>> kept_entries;  // entry, its part's directory
  std::set<std::string> copied_targets;
  for (std::size_t p = 0; p < parts.size(); ++p) {
    const nlohmann::json& part = parts[p];
    const std::string dir = part_dirs[p];
    sources.push_back({{"dir", dir}, {"shard", part.value("shard", nlohmann::json())},
                       {"inputs", part["inputs"].size()}});
    if (part.contains("started") && part["started"].is_string() && (started.empty() || part["started"].get<std::string>() < started)) {
      started = part["started"].get<std::string>();
    }
    if (part.contains("finished") && part["finished"].is_string() && part["finished"].get<std::string>() > finished) {
      finished = part["finished"].get<std::string>();
    }
    if (part.contains("shard") && part["shard"].is_object()) {
      covered.insert(part["shard"].value("index", -1));
      shard_count = std::max(shard_count, part["shard"].value("count", 0));
    }
    for (const nlohmann::json& entry : part["inputs"]) {
      if (!entry.is_object()) continue;
      const std::string key = entry.contains("key") && entry["key"].is_string() ? entry["key"].get<std::string>()
                                                                                 : entry.value("input", std::string());
      auto found = position.find(key);
      if (found != position.end()) {
        ++result.duplicates;
        auto& kept = kept_entries[found->second];
        if (kept.first.value("status", std::string()) != "ok" && entry.value("status", std::string()) == "ok") kept = {entry, dir};
        continue;
      }
      position.emplace(key, kept_entries.size());
      kept_entries.emplace_back(entry, dir);
    }
  }
  // Outputs of the kept entries: referenced where they are, or copied in.
  for (auto& [entry, dir] : kept_entries) {
    if (entry.contains("outputs") && entry["outputs"].is_object()) {
      for (auto it = entry["outputs"].begin(); it != entry["outputs"].end(); ++it) {
        if (!it.value().is_string()) continue;
        const std::string file = it.value().get<std::string>();
        const fs::path source = fs::path(dir) / file;
        if (options.copy) {
          std::string target = path_stays_inside(file) ? fs::path(file).lexically_normal().string()
                                                       : safe_file_stem(fs::path(file).filename().string());
          if (!copied_targets.insert(target).second) {
            throw UsageError(fmt::format("{}: two parts wrote an output of this name; merge without --copy", target));
          }
          const fs::path to = fs::path(out_dir) / target;
          fs::create_directories(to.parent_path(), ec);
          fs::copy_file(source, to, fs::copy_options::overwrite_existing, ec);
          if (ec) throw OutputError(to.string() + ": cannot copy from " + source.string() + " (" + ec.message() + ")");
          ++result.copied;
          it.value() = target;
        } else {
          it.value() = fs::relative(fs::absolute(source, ec), out_abs, ec).lexically_normal().string();
        }
      }
    }
    inputs.push_back(std::move(entry));
  }
  if (result.duplicates > 0) spdlog::warn("merge-manifests: {} input(s) appear in more than one part; kept once", result.duplicates);
  for (int i = 0; i < shard_count; ++i) {
    if (covered.count(i) == 0) result.missing_shards.push_back(i);
  }
  std::size_t errors = 0;
  for (const auto& e : inputs) errors += e.value("status", std::string("ok")) != "ok";
  merged["started"] = started;
  merged["finished"] = finished;
  merged["merged_from"] = sources;
  if (shard_count > 0) merged["missing_shards"] = result.missing_shards;
  merged["summary"] = {{"inputs", inputs.size()}, {"ok", inputs.size() - errors}, {"error", errors}};
  result.inputs = inputs.size();
  merged["inputs"] = std::move(inputs);
  write_text_atomically((fs::path(out_dir) / "manifest.json").string(), dump(merged));
  write_index_html(out_dir);
  result.manifest = std::move(merged);
  return result;
}

}  // namespace cnnvis
