#include "cnnvis/methods/road.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include <ATen/ATen.h>
#include <opencv2/imgproc.hpp>
#include <spdlog/spdlog.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/methods/prediction_util.h"
#include "cnnvis/methods/evaluate.h"
#include "cnnvis/methods/tensor_image.h"
#include "cnnvis/models/eval_scope.h"
#include "cnnvis/models/network.h"

namespace cnnvis {

namespace {

struct Neighbour {
  int dy, dx;
  double weight;
};

// road.py's neighbour weights: 1/6 for the edge neighbours, 1/12 for the diagonal ones (sum 1).
constexpr Neighbour kNeighbours[8] = {{-1, -1, 1.0 / 12}, {-1, 0, 1.0 / 6}, {-1, 1, 1.0 / 12}, {0, -1, 1.0 / 6},
                                      {0, 1, 1.0 / 6},    {1, -1, 1.0 / 12}, {1, 0, 1.0 / 6},  {1, 1, 1.0 / 12}};

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

float mean_of(const std::vector<float>& v) {
  return v.empty() ? 0.0f : static_cast<float>(std::accumulate(v.begin(), v.end(), 0.0) / v.size());
}

}  // namespace

cv::Mat impute_linear(const cv::Mat& image, const cv::Mat& removed, double tolerance, float noise, cv::RNG* rng) {
  if (image.empty() || image.depth() != CV_32F) throw UsageError("imputation needs a non-empty CV_32F image");
  if (removed.size() != image.size() || removed.type() != CV_8U) {
    throw UsageError("imputation needs a CV_8U mask of the image's size");
  }
  if (!(tolerance > 0)) throw UsageError("imputation tolerance must be positive");
  if (!(noise >= 0) || !std::isfinite(noise)) throw UsageError("imputation noise must be a finite value >= 0");
  const int h = image.rows, w = image.cols, c = image.channels();
  cv::Mat out = image.clone();  // continuous
  std::vector<int> index(static_cast<std::size_t>(h) * w, -1);
  std::vector<int> unknown;
  for (int y = 0; y < h; ++y) {
    const unsigned char* m = removed.ptr<unsigned char>(y);
    for (int x = 0; x < w; ++x) {
      if (m[x] != 0) {
        index[static_cast<std::size_t>(y) * w + x] = static_cast<int>(unknown.size());
        unknown.push_back(y * w + x);
      }
    }
  }
  if (unknown.empty()) return out;
  if (unknown.size() == index.size()) throw UsageError("imputation needs at least one known pixel");
  const int n = static_cast<int>(unknown.size());

  // Row i: diag_i x_i - sum_j w_ij x_j = sum_k w_ik v_k over the removed (j) and known (k) neighbours inside
  // the image; diag_i = sum of those weights. Symmetric, diagonally dominant and every component touches a
  // known pixel, hence positive definite: conjugate gradients converge.
  std::vector<double> diag(n, 0.0);
  std::vector<int> start(n + 1, 0), col, known_start(n + 1, 0), known_col;
  std::vector<double> val, known_val;
  for (int i = 0; i < n; ++i) {
    const int y = unknown[i] / w, x = unknown[i] % w;
    for (const Neighbour& nb : kNeighbours) {
      const int ny = y + nb.dy, nx = x + nb.dx;
      if (ny < 0 || nx < 0 || ny >= h || nx >= w) continue;
      diag[i] += nb.weight;
      const int q = ny * w + nx;
      if (index[q] >= 0) {
        col.push_back(index[q]);
        val.push_back(nb.weight);
      } else {
        known_col.push_back(q);
        known_val.push_back(nb.weight);
      }
    }
    start[i + 1] = static_cast<int>(col.size());
    known_start[i + 1] = static_cast<int>(known_col.size());
  }
  auto apply = [&](const std::vector<double>& v, std::vector<double>& result) {
    for (int i = 0; i < n; ++i) {
      double s = diag[i] * v[i];
      for (int e = start[i]; e < start[i + 1]; ++e) s -= val[e] * v[col[e]];
      result[i] = s;
    }
  };
  auto dot = [n](const std::vector<double>& a, const std::vector<double>& b) {
    double s = 0;
    for (int i = 0; i < n; ++i) s += a[i] * b[i];
    return s;
  };

  float* data = out.ptr<float>();
  std::vector<double> b(n), x(n), r(n), z(n), p(n), ap(n);
  const int max_iterations = 10 * n + 100;
  for (int ch = 0; ch < c; ++ch) {
    for (int i = 0; i < n; ++i) {
      double s = 0;
      for (int e = known_start[i]; e < known_start[i + 1]; ++e) s += known_val[e] * data[known_col[e] * c + ch];
      b[i] = s;
      x[i] = s / diag[i];  // Jacobi start: exact for a pixel with no removed neighbour
    }
    const double threshold = tolerance * std::max(std::sqrt(dot(b, b)), 1e-300);
    apply(x, ap);
    for (int i = 0; i < n; ++i) {
      r[i] = b[i] - ap[i];
      z[i] = r[i] / diag[i];
      p[i] = z[i];
    }
    double rz = dot(r, z);
    int it = 0;
    for (; it < max_iterations && std::sqrt(dot(r, r)) > threshold; ++it) {
      apply(p, ap);
      const double pap = dot(p, ap);
      if (!(pap > 0)) break;
      const double alpha = rz / pap;
      for (int i = 0; i < n; ++i) {
        x[i] += alpha * p[i];
        r[i] -= alpha * ap[i];
        z[i] = r[i] / diag[i];
      }
      const double rz_next = dot(r, z);
      const double beta = rz_next / rz;
      rz = rz_next;
      for (int i = 0; i < n; ++i) p[i] = z[i] + beta * p[i];
    }
    if (it >= max_iterations) {
      spdlog::warn("imputation: conjugate gradients stopped after {} iterations (residual {:.3g}, wanted {:.3g})",
                   it, std::sqrt(dot(r, r)), threshold);
    }
    for (int i = 0; i < n; ++i) {
      const double e = (noise > 0 && rng != nullptr) ? noise * rng->gaussian(1.0) : 0.0;
      data[unknown[i] * c + ch] = static_cast<float>(x[i] + e);
    }
  }
  return out;
}

std::vector<RoadScores> score_road(LoadedModel& model, const std::vector<cv::Mat>& inputs,
                                   const std::vector<cv::Mat>& maps, const std::vector<int>& targets,
                                   const RoadOptions& options) {
  if (options.percentages.empty()) throw UsageError("ROAD needs at least one percentage");
  for (int k : options.percentages) {
    if (k < 1 || k > 99) throw UsageError("ROAD percentages must be in 1..99, got " + std::to_string(k));
  }
  if (!(options.noise >= 0) || !std::isfinite(options.noise)) throw UsageError("ROAD noise must be >= 0");
  if (!(options.tolerance > 0)) throw UsageError("ROAD solver tolerance must be positive");
  if (options.batch_size < 1) throw UsageError("ROAD batch size must be at least 1");
  if (maps.size() != inputs.size() || targets.size() != inputs.size()) {
    throw UsageError("ROAD needs one map and one target per input");
  }
  Network& net = model.network();
  EvalScope scope(net);
  at::NoGradGuard no_grad;
  const ModelCard& card = model.card();
  const at::Device device(model.device());
  const int h = card.input_height, w = card.input_width;
  const int64_t pixels = static_cast<int64_t>(h) * w;

  std::vector<RoadScores> out;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    cv::Mat map = checked_score_map(maps[i], targets[i], model.num_classes(), w, h, "ROAD");

    // Rank of every pixel: highest value first, ties by raster index (as the deletion curve).
    std::vector<int> order(static_cast<std::size_t>(pixels));
    std::iota(order.begin(), order.end(), 0);
    const float* v = map.ptr<float>();
    std::stable_sort(order.begin(), order.end(), [v](int a, int b) { return v[a] > v[b]; });
    std::vector<int> rank(order.size());
    for (std::size_t r = 0; r < order.size(); ++r) rank[order[r]] = static_cast<int>(r);

    const at::Tensor x = images_to_tensor({inputs[i]}, card, device);  // 1 x C x H x W, normalised
    const at::Tensor hwc = x[0].permute({1, 2, 0}).to(at::kCPU, at::kFloat).contiguous();
    const int channels = static_cast<int>(hwc.size(2));
    const cv::Mat normalised = cv::Mat(h, w, CV_32FC(channels), hwc.data_ptr<float>()).clone();

    std::vector<at::Tensor> copies = {x};
    for (int lerf = 0; lerf < 2; ++lerf) {
      for (int k : options.percentages) {
        const int64_t count = std::llround(static_cast<double>(pixels) * k / 100.0);
        cv::Mat removed(h, w, CV_8U);
        for (int64_t p = 0; p < pixels; ++p) {
          removed.ptr<unsigned char>()[p] = (lerf ? rank[p] >= pixels - count : rank[p] < count) ? 1 : 0;
        }
        cv::RNG rng(splitmix64(options.seed ^ splitmix64(static_cast<std::uint64_t>(lerf * 1000 + k))));
        cv::Mat imputed = impute_linear(normalised, removed, options.tolerance, options.noise, &rng);
        at::Tensor t = at::from_blob(imputed.ptr<float>(), {h, w, channels}, at::kFloat).clone();
        copies.push_back(t.permute({2, 0, 1}).unsqueeze(0).to(device, x.scalar_type()));
      }
    }
    const std::vector<float> p = target_probabilities(net, at::cat(copies), targets[i], options.batch_size);
    const std::size_t kn = options.percentages.size();
    RoadScores s;
    s.target = targets[i];
    s.probability = p[0];
    s.morf.assign(p.begin() + 1, p.begin() + 1 + kn);
    s.lerf.assign(p.begin() + 1 + kn, p.end());
    s.morf_mean = mean_of(s.morf);
    s.lerf_mean = mean_of(s.lerf);
    double combined = 0;
    for (std::size_t k = 0; k < kn; ++k) combined += (s.lerf[k] - s.morf[k]) / 2.0;
    s.combined = static_cast<float>(combined / kn);
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace cnnvis
