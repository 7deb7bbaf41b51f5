#include "cnnvis/embed/atlas_layout.h"

#include <algorithm>
#include <cmath>
#include <map>

#include <opencv2/core.hpp>

#include "cnnvis/core/errors.h"

namespace cnnvis {

double percentile(std::vector<double> values, double q) {
  if (values.empty()) throw UsageError("percentile of no values");
  std::sort(values.begin(), values.end());
  const double pos = std::clamp(q, 0.0, 100.0) / 100.0 * static_cast<double>(values.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (pos - static_cast<double>(lo)) * (values[hi] - values[lo]);
}

std::vector<float> normalize_atlas_layout(const std::vector<float>& xy, double low_percentile, double high_percentile,
                                          double margin) {
  if (xy.size() % 2 != 0) throw UsageError("a layout needs two coordinates per point");
  const std::size_t n = xy.size() / 2;
  std::vector<float> out(xy.size());
  if (n == 0) return out;
  for (int axis = 0; axis < 2; ++axis) {
    std::vector<double> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = xy[2 * i + axis];
    double lo = percentile(v, low_percentile), hi = percentile(v, high_percentile);
    const double extent = hi - lo;
    lo -= margin * extent;
    hi += margin * extent;
    double min_c = hi, max_c = lo;
    for (double& x : v) {
      x = std::clamp(x, lo, hi);
      min_c = std::min(min_c, x);
      max_c = std::max(max_c, x);
    }
    const double range = max_c - min_c;
    for (std::size_t i = 0; i < n; ++i)
      out[2 * i + axis] = range > 0 ? static_cast<float>((v[i] - min_c) / range) : 0.5f;
  }
  return out;
}

std::vector<AtlasCellSummary> bin_atlas_cells(const std::vector<float>& xy01, const std::vector<float>& activations,
                                              int channels, const std::vector<std::int64_t>& attr_classes,
                                              const std::vector<float>& attr_values, int k,
                                              const AtlasBinningOptions& options) {
  if (options.grid < 1) throw UsageError("an atlas grid needs at least one cell per side");
  const std::size_t n = xy01.size() / 2;
  if (activations.size() != n * static_cast<std::size_t>(channels) ||
      attr_classes.size() != n * static_cast<std::size_t>(k) || attr_values.size() != attr_classes.size()) {
    throw UsageError("bin_atlas_cells: layout, activations and attributions disagree on the number of samples");
  }
  const int g = options.grid;
  auto cell_of = [g](float v) { return std::clamp(static_cast<int>(std::floor(v * g)), 0, g - 1); };
  std::vector<std::vector<std::int64_t>> members(static_cast<std::size_t>(g) * g);
  for (std::size_t i = 0; i < n; ++i) {
    const int column = cell_of(xy01[2 * i]), row = cell_of(xy01[2 * i + 1]);
    members[static_cast<std::size_t>(row) * g + column].push_back(static_cast<std::int64_t>(i));
  }
  std::vector<AtlasCellSummary> cells;
  for (int row = 0; row < g; ++row) {
    for (int column = 0; column < g; ++column) {
      auto& m = members[static_cast<std::size_t>(row) * g + column];
      if (m.empty() || static_cast<std::int64_t>(m.size()) < options.min_count) continue;
      AtlasCellSummary c;
      c.column = column;
      c.row = row;
      c.count = static_cast<std::int64_t>(m.size());
      std::vector<double> sum(channels, 0.0);
      double sx = 0, sy = 0;
      std::map<int, double> attribution;
      for (std::int64_t i : m) {
        const float* a = activations.data() + i * channels;
        for (int j = 0; j < channels; ++j) sum[j] += a[j];
        sx += xy01[2 * i];
        sy += xy01[2 * i + 1];
        for (int j = 0; j < k; ++j) attribution[static_cast<int>(attr_classes[i * k + j])] += attr_values[i * k + j];
      }
      const double count = static_cast<double>(c.count);
      c.mean_activation.resize(channels);
      for (int j = 0; j < channels; ++j) c.mean_activation[j] = static_cast<float>(sum[j] / count);
      c.x = static_cast<float>(sx / count);
      c.y = static_cast<float>(sy / count);
      std::vector<std::pair<int, float>> classes;
      for (const auto& [cls, total] : attribution) classes.emplace_back(cls, static_cast<float>(total / count));
      std::stable_sort(classes.begin(), classes.end(),
                       [](const auto& a, const auto& b) { return a.second > b.second; });
      if (static_cast<int>(classes.size()) > options.top_classes) classes.resize(options.top_classes);
      c.top_classes = std::move(classes);
      c.members = std::move(m);
      cells.push_back(std::move(c));
    }
  }
  return cells;
}

std::vector<float> atlas_whitening_matrix(const std::vector<float>& activations, int channels, double ridge) {
  if (channels <= 0 || activations.empty() || activations.size() % static_cast<std::size_t>(channels) != 0) {
    throw UsageError("whitening needs a non-empty n x channels matrix");
  }
  const int n = static_cast<int>(activations.size() / channels);
  const cv::Mat a(n, channels, CV_32F, const_cast<float*>(activations.data()));
  cv::Mat a64;
  a.convertTo(a64, CV_64F);
  cv::Mat correlation;
  cv::mulTransposed(a64, correlation, /*aTa=*/true);  // channels x channels
  correlation /= static_cast<double>(n);
  const double mean_diagonal = cv::trace(correlation)[0] / channels;
  const double lambda = ridge * (mean_diagonal > 0 ? mean_diagonal : 1.0);
  correlation += cv::Mat::eye(channels, channels, CV_64F) * lambda;
  cv::Mat inverse;
  if (cv::invert(correlation, inverse, cv::DECOMP_CHOLESKY) == 0) cv::invert(correlation, inverse, cv::DECOMP_SVD);
  cv::Mat out;
  inverse.convertTo(out, CV_32F);
  return std::vector<float>(out.begin<float>(), out.end<float>());
}

std::vector<float> apply_whitening(const std::vector<float>& v, const std::vector<float>& s) {
  const std::size_t c = v.size();
  if (s.size() != c * c) throw UsageError("whitening matrix and vector sizes disagree");
  std::vector<double> sum(c, 0.0);
  for (std::size_t i = 0; i < c; ++i) {
    const double vi = v[i];
    if (vi == 0) continue;
    for (std::size_t j = 0; j < c; ++j) sum[j] += vi * s[i * c + j];
  }
  return std::vector<float>(sum.begin(), sum.end());
}

std::vector<float> l2_normalize_rows(const std::vector<float>& data, int cols) {
  std::vector<float> out(data.size());
  const std::size_t rows = cols > 0 ? data.size() / cols : 0;
  for (std::size_t r = 0; r < rows; ++r) {
    double norm = 0;
    for (int j = 0; j < cols; ++j) norm += static_cast<double>(data[r * cols + j]) * data[r * cols + j];
    norm = std::sqrt(norm);
    for (int j = 0; j < cols; ++j) out[r * cols + j] = norm > 0 ? static_cast<float>(data[r * cols + j] / norm) : 0.0f;
  }
  return out;
}

}  // namespace cnnvis
