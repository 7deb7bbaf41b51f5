// Golden-run regression, one output at a time: .npy maps and images within tolerances (with a
// difference picture), other files byte for byte, and the top predicted class.
#include "cnnvis/io/compare_outputs.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include <fmt/format.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "cnnvis/core/errors.h"
#include "cnnvis/core/text.h"
#include "cnnvis/io/colormap.h"
#include "cnnvis/io/files.h"
#include "cnnvis/io/image_io.h"
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

namespace {

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::vector<std::string> parts;
  for (auto s : shape) parts.push_back(std::to_string(s));
  return "(" + join(parts, ", ") + ")";
}

// A loaded output: values as float plus the shape, or the reason it could not be read.
struct Loaded {
  std::vector<float> values;
  std::vector<std::int64_t> shape;
  std::string error;
};

}  // namespace

bool is_image_file(const std::string& path) {
  const std::string ext = to_lower(fs::path(path).extension().string());
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp" || ext == ".tif" || ext == ".tiff" ||
         ext == ".webp";
}

namespace {

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

}  // namespace

void OutputComparer::compare_file(CompareReport& report, CompareItem item) {
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

}  // namespace cnnvis
