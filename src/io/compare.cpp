// Golden-run regression: pairs two runs' inputs and outputs through their manifests, hands each pair
// to the output comparisons (compare_outputs.h), and writes the report.
#include "cnnvis/io/compare.h"

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/core/text.h"
#include "cnnvis/io/batch.h"  // path_stays_inside
#include "cnnvis/io/compare_outputs.h"
#include "cnnvis/io/files.h"
#include "cnnvis/io/html_index.h"
#include "cnnvis/io/manifest.h"

namespace cnnvis {

namespace fs = std::filesystem;

std::size_t CompareReport::count(const std::string& status) const {
  return static_cast<std::size_t>(
      std::count_if(items.begin(), items.end(), [&](const CompareItem& i) { return i.status == status; }));
}

bool CompareReport::unusable() const { return count("shape_mismatch") + count("unreadable") > 0; }

int CompareReport::exit_code() const {
  if (unusable()) return 2;
  return count("pass") == items.size() ? 0 : 1;
}

namespace {

nlohmann::json item_json(const CompareItem& i) {
  nlohmann::json j = {{"input", i.input}, {"output", i.output}, {"kind", i.kind}, {"status", i.status},
                      {"detail", i.detail}};
  if (!i.golden_file.empty()) j["golden_file"] = i.golden_file;
  if (!i.new_file.empty()) j["new_file"] = i.new_file;
  if (!i.golden_shape.empty()) j["golden_shape"] = i.golden_shape;
  if (!i.new_shape.empty()) j["new_shape"] = i.new_shape;
  if (i.compared) {
    const ArrayDifference& d = i.difference;
    j["identical"] = d.identical;
    j["max_abs"] = d.max_abs;
    j["mean_abs"] = d.mean_abs;
    j["scale"] = d.scale;
    j["max_rel"] = d.max_rel;
    j["mean_rel"] = d.mean_rel;
    j["correlation"] = d.correlation;
    j["nonfinite_mismatches"] = d.nan_mismatches;
  }
  if (!i.diff_image.empty()) j["diff_image"] = i.diff_image;
  return j;
}

nlohmann::json load_run(const std::string& dir, const std::string& which) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw InputError(dir + ": " + which + " directory does not exist");
  const fs::path manifest = fs::path(dir) / "manifest.json";
  if (!fs::exists(manifest, ec)) throw InputError(manifest.string() + ": missing (" + which + " run has no manifest)");
  return read_manifest(manifest.string());
}

std::string entry_key(const nlohmann::json& entry) {
  if (entry.contains("key") && entry["key"].is_string()) return entry["key"].get<std::string>();
  return entry.value("input", std::string());
}

// Golden and new entries paired: first by key (the input relative to its folder argument), then by
// the input path as written, then by file name where that is unique on both sides, so that a golden
// run made in another checkout or with other path spellings still pairs up.
struct Pairing {
  std::vector<std::pair<const nlohmann::json*, const nlohmann::json*>> pairs;
  std::vector<const nlohmann::json*> only_golden, only_new;
};

Pairing pair_entries(const nlohmann::json& golden, const nlohmann::json& fresh) {
  std::vector<const nlohmann::json*> g, n;
  for (const auto& e : golden["inputs"]) if (e.is_object()) g.push_back(&e);
  for (const auto& e : fresh["inputs"]) if (e.is_object()) n.push_back(&e);
  std::vector<const nlohmann::json*> match(g.size(), nullptr);
  std::vector<bool> used(n.size(), false);
  auto pass = [&](const std::function<std::string(const nlohmann::json&)>& name) {
    std::map<std::string, int> count_g, count_n;
    for (std::size_t i = 0; i < g.size(); ++i) if (!match[i]) ++count_g[name(*g[i])];
    std::map<std::string, std::size_t> index_n;
    for (std::size_t j = 0; j < n.size(); ++j) {
      if (used[j]) continue;
      ++count_n[name(*n[j])];
      index_n.emplace(name(*n[j]), j);
    }
    for (std::size_t i = 0; i < g.size(); ++i) {
      if (match[i]) continue;
      const std::string k = name(*g[i]);
      if (k.empty() || count_g[k] != 1 || count_n[k] != 1) continue;
      const std::size_t j = index_n[k];
      match[i] = n[j];
      used[j] = true;
    }
  };
  pass(entry_key);
  pass([](const nlohmann::json& e) { return e.value("input", std::string()); });
  pass([](const nlohmann::json& e) { return fs::path(e.value("input", std::string())).filename().string(); });
  Pairing out;
  for (std::size_t i = 0; i < g.size(); ++i) {
    if (match[i]) out.pairs.emplace_back(g[i], match[i]);
    else out.only_golden.push_back(g[i]);
  }
  for (std::size_t j = 0; j < n.size(); ++j) if (!used[j]) out.only_new.push_back(n[j]);
  return out;
}

std::vector<std::pair<std::string, std::string>> outputs_of(const nlohmann::json& entry) {
  std::vector<std::pair<std::string, std::string>> out;
  if (entry.contains("outputs") && entry["outputs"].is_object()) {
    for (auto it = entry["outputs"].begin(); it != entry["outputs"].end(); ++it) {
      if (it.value().is_string()) out.emplace_back(it.key(), it.value().get<std::string>());
    }
  }
  return out;
}

// The report for people: every item that did not pass, with golden / new / difference pictures side
// by side where there are pictures. Paths are relative to the report directory.
std::string report_html(const CompareReport& report) {
  std::error_code ec;
  const fs::path base = fs::absolute(report.report_dir, ec);
  auto link = [&](const std::string& dir, const std::string& file) {
    if (file.empty()) return std::string();
    const fs::path target = fs::absolute(fs::path(dir) / file, ec);
    if (!fs::is_regular_file(target, ec)) return std::string();
    return fs::relative(target, base, ec).string();
  };
  auto picture = [&](const std::string& href, const std::string& caption) {
    if (href.empty()) return std::string();
    return "<figure><a href=\"" + html_escape(href) + "\"><img src=\"" + html_escape(href) + "\"></a><figcaption>" + caption +
           "</figcaption></figure>";
  };
  std::string rows;
  for (const auto& i : report.items) {
    if (i.status == "pass") continue;
    std::string pictures;
    if (i.kind == "image") {
      pictures += picture(link(report.golden_dir, i.golden_file), "golden");
      pictures += picture(link(report.new_dir, i.new_file), "new");
    }
    if (!i.diff_image.empty()) pictures += picture(i.diff_image, "|new - golden|");
    rows += "<tr class=\"" + html_escape(i.status) + "\"><td>" + html_escape(i.status) + "</td><td>" + html_escape(i.input) + "</td><td>" +
            html_escape(i.output) + "</td><td>" + html_escape(i.detail) + "<div class=\"pics\">" + pictures + "</div></td></tr>\n";
  }
  std::string counts;
  for (const char* s : {"pass", "differ", "missing", "added", "shape_mismatch", "unreadable"}) {
    counts += fmt::format("{} {} · ", report.count(s), s);
  }
  return "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>cnnvis compare</title><style>"
         "body{font:14px system-ui,sans-serif;margin:16px}table{border-collapse:collapse}td{border-top:1px solid #ddd;"
         "padding:6px;vertical-align:top}.differ td:first-child,.missing td:first-child,.added td:first-child{color:#b60}"
         ".shape_mismatch td:first-child,.unreadable td:first-child{color:#c00;font-weight:bold}.pics{display:flex;gap:8px;"
         "margin-top:6px}figure{margin:0}img{max-width:256px;max-height:256px;border:1px solid #ccc;image-rendering:pixelated}"
         "figcaption{font-size:12px;color:#555}</style></head><body><h1>cnnvis compare</h1><p>golden <code>" +
         html_escape(report.golden_dir) + "</code> · new <code>" + html_escape(report.new_dir) + "</code></p><p>" +
         std::to_string(report.inputs) + " inputs · " + counts + "exit code " + std::to_string(report.exit_code()) +
         " · <a href=\"report.json\">report.json</a></p>" +
         (rows.empty() ? std::string("<p>Every output is within tolerance.</p>")
                       : "<table><tr><th>status</th><th>input</th><th>output</th><th>what</th></tr>\n" + rows + "</table>") +
         "</body></html>\n";
}

}  // namespace

CompareReport compare_runs(const std::string& golden_dir, const std::string& new_dir, const CompareOptions& options) {
  const nlohmann::json golden = load_run(golden_dir, "golden");
  const nlohmann::json fresh = load_run(new_dir, "new");
  CompareReport report;
  report.golden_dir = golden_dir;
  report.new_dir = new_dir;
  report.report_dir = options.report_dir;
  report.tolerances = options.tolerances;
  const Pairing pairing = pair_entries(golden, fresh);
  if (!options.report_dir.empty()) ensure_output_dir(options.report_dir);
  OutputComparer comparer(golden_dir, new_dir, options);
  for (const nlohmann::json* g : pairing.only_golden) {
    CompareItem item;
    item.input = entry_key(*g);
    item.kind = "status";
    item.status = "missing";
    item.detail = "input not in the new run";
    report.items.push_back(std::move(item));
  }
  for (const auto& [g, found] : pairing.pairs) {
    const std::string key = entry_key(*g);
    ++report.inputs;
    const nlohmann::json& n = *found;
    const std::string g_status = g->value("status", "ok"), n_status = n.value("status", "ok");
    if (g_status != n_status) {
      CompareItem item;
      item.input = key;
      item.kind = "status";
      item.status = "differ";
      std::string why = n.contains("error") && n["error"].is_string() ? n["error"].get<std::string>() : "";
      if (why.empty() && g->contains("error") && (*g)["error"].is_string()) why = (*g)["error"].get<std::string>();
      item.detail = "status " + g_status + " -> " + n_status + (why.empty() ? "" : ": " + why);
      report.items.push_back(std::move(item));
    }
    const auto g_outputs = outputs_of(*g);
    const auto n_outputs = outputs_of(n);
    std::map<std::string, std::string> n_map(n_outputs.begin(), n_outputs.end());
    std::set<std::string> g_names;
    for (const auto& [name, file] : g_outputs) {
      g_names.insert(name);
      CompareItem item;
      item.input = key;
      item.output = name;
      item.golden_file = file;
      auto it = n_map.find(name);
      if (it == n_map.end()) {
        item.kind = is_image_file(file) ? "image" : to_lower(fs::path(file).extension().string()) == ".npy" ? "map" : "file";
        item.status = "missing";
        item.detail = "output not written by the new run";
        report.items.push_back(std::move(item));
        continue;
      }
      item.new_file = it->second;
      comparer.compare_file(report, std::move(item));
    }
    for (const auto& [name, file] : n_outputs) {
      if (g_names.count(name)) continue;
      CompareItem item;
      item.input = key;
      item.output = name;
      item.new_file = file;
      item.kind = "file";
      item.status = "added";
      item.detail = "output not in the golden run";
      report.items.push_back(std::move(item));
    }
    compare_predictions(report, key, *g, n, options.tolerances);
  }
  for (const nlohmann::json* e : pairing.only_new) {
    CompareItem item;
    item.input = entry_key(*e);
    item.kind = "status";
    item.status = "added";
    item.detail = "input not in the golden run";
    report.items.push_back(std::move(item));
  }
  if (!options.report_dir.empty()) {
    write_text_atomically((fs::path(options.report_dir) / "report.json").string(),
                          report.to_json().dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
    write_text_atomically((fs::path(options.report_dir) / "report.html").string(), report_html(report));
  }
  return report;
}

nlohmann::json CompareReport::to_json() const {
  nlohmann::json j;
  j["tool"] = "cnnvis";
  j["golden"] = golden_dir;
  j["new"] = new_dir;
  j["tolerances"] = {{"max_diff", tolerances.max_diff}, {"mean_diff", tolerances.mean_diff},
                     {"min_corr", tolerances.min_corr}, {"image_max_diff", tolerances.image_max_diff},
                     {"probability", tolerances.probability}};
  nlohmann::json counts = nlohmann::json::object();
  for (const char* s : {"pass", "differ", "missing", "added", "shape_mismatch", "unreadable"}) counts[s] = count(s);
  j["summary"] = {{"inputs", inputs}, {"items", items.size()}, {"counts", counts}, {"exit_code", exit_code()}};
  nlohmann::json list = nlohmann::json::array();
  for (const auto& i : items) list.push_back(item_json(i));
  j["items"] = std::move(list);
  return j;
}

std::string compare_summary(const CompareReport& report, std::size_t max_listed) {
  std::string out = fmt::format("compare: {} inputs, {} outputs: {} pass", report.inputs, report.items.size(), report.count("pass"));
  for (const char* s : {"differ", "missing", "added", "shape_mismatch", "unreadable"}) {
    if (const std::size_t n = report.count(s)) out += fmt::format(", {} {}", n, s);
  }
  out += "\n";
  std::size_t listed = 0, failing = 0;
  for (const auto& i : report.items) {
    if (i.status == "pass") continue;
    ++failing;
    if (listed >= max_listed) continue;
    ++listed;
    const std::string what = i.output.empty() ? i.input : i.input + " [" + i.output + "]";
    out += fmt::format("  {:<14} {}: {}\n", i.status.c_str(), what, i.detail);
  }
  if (failing > listed) out += fmt::format("  ... {} more (see the report)\n", failing - listed);
  if (!report.report_dir.empty()) out += "report: " + (fs::path(report.report_dir) / "report.json").string() + "\n";
  return out;
}

std::size_t update_golden(const std::string& golden_dir, const std::string& new_dir) {
  nlohmann::json fresh = load_run(new_dir, "new");
  std::set<std::string> old_files;
  std::error_code ec;
  const fs::path old_manifest = fs::path(golden_dir) / "manifest.json";
  if (fs::exists(old_manifest, ec)) {
    try {
      const nlohmann::json previous = read_manifest(old_manifest.string());
      for (const auto& e : previous["inputs"]) {
        for (const auto& [name, file] : outputs_of(e)) {
          if (path_stays_inside(file)) old_files.insert(fs::path(file).lexically_normal().string());
        }
      }
    } catch (const InputError& e) {
      spdlog::warn("{} (replacing it)", e.what());
    }
  }
  ensure_output_dir(golden_dir);
  std::set<std::string> written;
  std::size_t copied = 0;
  for (auto& e : fresh["inputs"]) {
    if (!e.is_object() || !e.contains("outputs") || !e["outputs"].is_object()) continue;
    for (auto it = e["outputs"].begin(); it != e["outputs"].end(); ++it) {
      if (!it.value().is_string()) continue;
      const std::string file = it.value().get<std::string>();
      std::string target = path_stays_inside(file) ? fs::path(file).lexically_normal().string()
                                              : safe_file_stem(fs::path(file).filename().string());
      const std::string base = target;
      for (int n = 2; written.count(target) != 0; ++n) target = base + "-" + std::to_string(n);
      const fs::path from = fs::path(new_dir) / file;
      const fs::path to = fs::path(golden_dir) / target;
      if (!fs::is_regular_file(from, ec)) throw InputError(from.string() + ": listed in the new manifest but missing");
      fs::create_directories(to.parent_path(), ec);
      fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
      if (ec) throw OutputError(to.string() + ": cannot write (" + ec.message() + ")");
      written.insert(target);
      it.value() = target;
      ++copied;
    }
  }
  for (const auto& file : old_files) {
    if (written.count(file) == 0) fs::remove(fs::path(golden_dir) / file, ec);
  }
  fresh["updated_from"] = new_dir;
  write_text_atomically(old_manifest.string(),
                        fresh.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  write_index_html(golden_dir);
  return copied;
}

}  // namespace cnnvis
