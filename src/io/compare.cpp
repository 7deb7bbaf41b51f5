// Golden-run regression: pairs two runs' outputs through their manifests and compares them.
#include "cnnvis/io/compare.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <set>

#include <fmt/format.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <spdlog/spdlog.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/core/text.h"
#include "cnnvis/io/batch.h"
#include "cnnvis/io/colormap.h"
#include "cnnvis/io/files.h"
#include "cnnvis/io/html_index.h"
#include "cnnvis/io/image_io.h"
#include "cnnvis/io/manifest.h"
#include "cnnvis/io/npy.h"

namespace cnnvis {

namespace fs = std::filesystem;

ArrayDifference compare_arrays(const float* golden, const float* fresh, std::size_t count) {
  ArrayDifference d;
  d.count = count;
  double sum_abs = 0, sum_g = 0, sum_n = 0, sum_gg = 0, sum_nn = 0, sum_gn = 0;
  std::size_t finite = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const float g = golden[i], n = fresh[i];
    const bool g_ok = std::isfinite(g), n_ok = std::isfinite(n);
    if (!g_ok || !n_ok) {
      // Equal when both are the same non-finite value (NaN == NaN, +inf == +inf).
      const bool same = (!g_ok && !n_ok) && ((std::isnan(g) && std::isnan(n)) || g == n);
      if (!same) {
        ++d.nan_mismatches;
        d.identical = false;
      }
      continue;
    }
    if (std::memcmp(&g, &n, sizeof(float)) != 0 && g != n) d.identical = false;
    const double diff = std::abs(static_cast<double>(n) - g);
    d.max_abs = std::max(d.max_abs, diff);
    d.scale = std::max(d.scale, std::abs(static_cast<double>(g)));
    sum_abs += diff;
    sum_g += g;
    sum_n += n;
    sum_gg += static_cast<double>(g) * g;
    sum_nn += static_cast<double>(n) * n;
    sum_gn += static_cast<double>(g) * n;
    ++finite;
  }
  if (finite > 0) {
    d.mean_abs = sum_abs / finite;
    const double denominator = d.scale > 0 ? d.scale : 1.0;
    d.max_rel = d.max_abs / denominator;
    d.mean_rel = d.mean_abs / denominator;
    const double var_g = sum_gg / finite - (sum_g / finite) * (sum_g / finite);
    const double var_n = sum_nn / finite - (sum_n / finite) * (sum_n / finite);
    const double cov = sum_gn / finite - (sum_g / finite) * (sum_n / finite);
    // Variances below this are rounding noise of a constant map.
    const double eps = 1e-24 * std::max(1.0, d.scale * d.scale);
    if (var_g <= eps && var_n <= eps) {
      d.correlation = d.max_abs == 0 ? 1.0 : 0.0;
    } else if (var_g <= eps || var_n <= eps) {
      d.correlation = 0.0;
    } else {
      d.correlation = std::clamp(cov / std::sqrt(var_g * var_n), -1.0, 1.0);
    }
  }
  return d;
}

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

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::vector<std::string> parts;
  for (auto s : shape) parts.push_back(std::to_string(s));
  return "(" + join(parts, ", ") + ")";
}

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

// A loaded output: values as float plus the shape, or the reason it could not be read.
struct Loaded {
  std::vector<float> values;
  std::vector<std::int64_t> shape;
  std::string error;
};

bool is_image_file(const std::string& path) {
  const std::string ext = to_lower(fs::path(path).extension().string());
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp" || ext == ".tif" || ext == ".tiff" ||
         ext == ".webp";
}

Loaded load_map(const std::string& path) {
  Loaded out;
  try {
    const NpyArray a = read_npy(path);
    out.values = a.to_float();
    out.shape = a.shape;
  } catch (const Error& e) {
    out.error = e.what();
  }
  return out;
}

// Pixels scaled to [0, 1], channels as the file stores them (BGR for colour; both sides alike).
Loaded load_pixels(const std::string& path) {
  Loaded out;
  cv::Mat image;
  try {
    // The checked reader: a crafted file in a compared folder must not reach a decoder it was not made for.
    image = load_image_unchanged(path);
  } catch (const Error& e) {
    out.error = e.what();
    return out;
  }
  const double range = image.depth() == CV_16U ? 65535.0 : image.depth() == CV_8U ? 255.0 : 1.0;
  cv::Mat f;
  image.convertTo(f, CV_32F, 1.0 / range);
  f = f.reshape(1, 1).clone();
  out.values.assign(f.ptr<float>(), f.ptr<float>() + f.total());
  out.shape = {image.rows, image.cols, image.channels()};
  return out;
}

bool read_bytes(const std::string& path, std::string& bytes) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return false;
  char buffer[65536];
  std::size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), f)) > 0) bytes.append(buffer, n);
  const bool ok = std::ferror(f) == 0;
  std::fclose(f);
  return ok;
}

// |new - golden| as a picture: per pixel the largest difference over channels, scaled so that the
// largest difference is the top of the colormap. Only for 2-D maps and images.
cv::Mat difference_picture(const Loaded& golden, const Loaded& fresh) {
  const auto& s = golden.shape;
  if (s.size() < 2 || s.size() > 3) return {};
  const int rows = static_cast<int>(s[0]), cols = static_cast<int>(s[1]);
  const int channels = s.size() == 3 ? static_cast<int>(s[2]) : 1;
  if (rows <= 0 || cols <= 0 || channels <= 0) return {};
  cv::Mat diff(rows, cols, CV_32F, cv::Scalar(0));
  float top = 0;
  for (int y = 0; y < rows; ++y) {
    for (int x = 0; x < cols; ++x) {
      float m = 0;
      for (int c = 0; c < channels; ++c) {
        const std::size_t i = (static_cast<std::size_t>(y) * cols + x) * channels + c;
        const float g = golden.values[i], n = fresh.values[i];
        const float d = std::isfinite(g) && std::isfinite(n) ? std::abs(n - g) : (std::isnan(g) == std::isnan(n) ? 0.f : 1.f);
        m = std::max(m, d);
      }
      diff.at<float>(y, x) = m;
      top = std::max(top, m);
    }
  }
  if (top > 0) diff /= top;
  cv::Mat rgb = apply_colormap(diff, Colormap::inferno);
  // Tiny maps (7x7 layer CAMs) are enlarged so a person can see them.
  const int longest = std::max(rows, cols);
  if (longest < 256) {
    const int factor = (256 + longest - 1) / longest;
    cv::resize(rgb, rgb, cv::Size(), factor, factor, cv::INTER_NEAREST);
  }
  return rgb;
}

std::string fmt_g(double v) { return fmt::format("{:.3g}", v); }

class Comparer {
 public:
  Comparer(const std::string& golden_dir, const std::string& new_dir, const CompareOptions& options)
      : golden_dir_(golden_dir), new_dir_(new_dir), options_(options) {}

  void compare_file(CompareReport& report, CompareItem item) {
    const std::string golden_path = (fs::path(golden_dir_) / item.golden_file).string();
    const std::string new_path = (fs::path(new_dir_) / item.new_file).string();
    std::error_code ec;
    if (!fs::is_regular_file(golden_path, ec)) {
      item.status = "unreadable";
      item.detail = golden_path + ": listed in the golden manifest but missing";
      report.items.push_back(std::move(item));
      return;
    }
    if (!fs::is_regular_file(new_path, ec)) {
      item.status = "missing";
      item.detail = new_path + ": listed in the new manifest but missing";
      report.items.push_back(std::move(item));
      return;
    }
    const std::string ext = to_lower(fs::path(item.golden_file).extension().string());
    const CompareTolerances& tol = options_.tolerances;
    if (ext == ".npy" || is_image_file(item.golden_file)) {
      const bool map = ext == ".npy";
      item.kind = map ? "map" : "image";
      const Loaded golden = map ? load_map(golden_path) : load_pixels(golden_path);
      const Loaded fresh = map ? load_map(new_path) : load_pixels(new_path);
      if (!golden.error.empty() || !fresh.error.empty()) {
        item.status = "unreadable";
        item.detail = !golden.error.empty() ? golden.error : fresh.error;
        report.items.push_back(std::move(item));
        return;
      }
      item.golden_shape = golden.shape;
      item.new_shape = fresh.shape;
      if (golden.shape != fresh.shape) {
        item.status = "shape_mismatch";
        item.detail = fmt::format("shape mismatch: golden {} {}, new {} {}", item.golden_file, shape_text(golden.shape),
                                  item.new_file, shape_text(fresh.shape));
        report.items.push_back(std::move(item));
        return;
      }
      item.difference = compare_arrays(golden.values.data(), fresh.values.data(), golden.values.size());
      item.compared = true;
      const ArrayDifference& d = item.difference;
      std::vector<std::string> why;
      // Images are already on a [0, 1] scale: their differences are absolute.
      const double max_diff = map ? d.max_rel : d.max_abs;
      const double mean_diff = map ? d.mean_rel : d.mean_abs;
      const double max_tol = map ? tol.max_diff : std::max(tol.max_diff, tol.image_max_diff);
      if (d.nan_mismatches > 0) why.push_back(fmt::format("{} non-finite values differ", d.nan_mismatches));
      if (max_diff > max_tol) why.push_back(fmt::format("max diff {} > {}", fmt_g(max_diff), fmt_g(max_tol)));
      if (mean_diff > tol.mean_diff) why.push_back(fmt::format("mean diff {} > {}", fmt_g(mean_diff), fmt_g(tol.mean_diff)));
      if (d.correlation < tol.min_corr) why.push_back(fmt::format("correlation {} < {}", fmt_g(d.correlation), fmt_g(tol.min_corr)));
      if (why.empty()) {
        item.detail = d.identical ? "identical" : fmt::format("max diff {}, mean diff {}, correlation {}", fmt_g(max_diff),
                                                              fmt_g(mean_diff), fmt::format("{:.6f}", d.correlation));
      } else {
        item.status = "differ";
        item.detail = join(why, ", ");
        if (!options_.report_dir.empty() && options_.write_diff_images) {
          const cv::Mat picture = difference_picture(golden, fresh);
          if (!picture.empty()) {
            std::string name = safe_file_stem(item.new_file);
            for (int n = 2; used_names_.count(name) != 0; ++n) name = safe_file_stem(item.new_file) + "-" + std::to_string(n);
            used_names_.insert(name);
            item.diff_image = "diffs/" + name + ".diff.png";
            fs::create_directories(fs::path(options_.report_dir) / "diffs", ec);
            write_png((fs::path(options_.report_dir) / item.diff_image).string(), picture);
          }
        }
      }
    } else {
      item.kind = "file";
      std::string a, b;
      if (!read_bytes(golden_path, a) || !read_bytes(new_path, b)) {
        item.status = "unreadable";
        item.detail = (a.empty() ? golden_path : new_path) + ": cannot read";
      } else if (a != b) {
        item.status = "differ";
        item.detail = fmt::format("contents differ ({} vs {} bytes)", a.size(), b.size());
      } else {
        item.detail = "identical";
      }
    }
    report.items.push_back(std::move(item));
  }

 private:
  std::string golden_dir_, new_dir_;
  const CompareOptions& options_;
  std::set<std::string> used_names_;
};

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

void compare_predictions(CompareReport& report, const std::string& key, const nlohmann::json& g, const nlohmann::json& n,
                         const CompareTolerances& tol) {
  const nlohmann::json gp = g.value("predictions", nlohmann::json::array());
  const nlohmann::json np = n.value("predictions", nlohmann::json::array());
  if (!gp.is_array() || gp.empty() || !gp[0].is_object()) return;
  CompareItem item;
  item.input = key;
  item.output = "predictions";
  item.kind = "predictions";
  if (!np.is_array() || np.empty() || !np[0].is_object()) {
    item.status = "missing";
    item.detail = "no predictions in the new run";
  } else {
    const int gi = gp[0].value("index", -1), ni = np[0].value("index", -1);
    const double gprob = gp[0].value("probability", 0.0), nprob = np[0].value("probability", 0.0);
    if (gi != ni) {
      item.status = "differ";
      item.detail = fmt::format("top class {} ({}) -> {} ({})", gi, gp[0].value("label", ""), ni, np[0].value("label", ""));
    } else if (std::abs(gprob - nprob) > tol.probability) {
      item.status = "differ";
      item.detail = fmt::format("top class probability {} -> {}", fmt_g(gprob), fmt_g(nprob));
    } else {
      item.detail = fmt::format("top class {} ({})", gi, gp[0].value("label", ""));
    }
  }
  report.items.push_back(std::move(item));
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
  Comparer comparer(golden_dir, new_dir, options);
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
