#include "cnnvis/embed/tsne.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <mutex>
#include <random>
#include <string>

#include <fftw3.h>

#include <spdlog/spdlog.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/core/parallel.h"
#include "cnnvis/embed/pca.h"

namespace cnnvis {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// ---- FFT-interpolated repulsion ---------------------------------------------------------------------
//
// With the Cauchy kernel K(a, b) = 1 / (1 + |a - b|^2), its square K2 and three charges per point
// (1, y_x, y_y), the potentials phi_c(i) = sum_j K2(y_i, y_j) q_c(j) give the repulsive force
//   sum_j K2 (y_i - y_j) = y_i phi_0 - (phi_1, phi_2),
// and psi(i) = sum_j K(y_i, y_j) gives the normaliser Z = sum_i psi(i) - N. (FIt-SNE derives Z from a
// fourth K2 charge |y|^2 instead; the separate K convolution costs the same number of transforms and
// avoids the cancellation in (1 + |y|^2) phi_0 - 2 y . phi + phi_3, which matters in single precision.)
// Potentials are interpolated: charges are spread onto equispaced nodes (p per box and dimension,
// Lagrange weights), the node-to-node kernel matrix is Toeplitz so its product is a linear convolution
// done by FFT on a zero-padded grid, and potentials are read back at the points with the same weights.
// A float buffer from fftwf_malloc (SIMD-aligned, as the plans were made for aligned arrays).
struct FftBuffer {
  float* data = nullptr;
  std::size_t size = 0;
  FftBuffer() = default;
  FftBuffer(const FftBuffer&) = delete;
  FftBuffer& operator=(const FftBuffer&) = delete;
  ~FftBuffer() { fftwf_free(data); }
  void resize(std::size_t n) {
    if (n == size) return;
    fftwf_free(data);
    data = fftwf_alloc_real(n);
    if (!data) throw std::bad_alloc();
    size = n;
  }
  fftwf_complex* complex() { return reinterpret_cast<fftwf_complex*>(data); }
};

// Real-to-complex and complex-to-real 2-D plans for an m x m grid, made once per size (FFTW_ESTIMATE:
// no timing runs, so the algorithm and therefore the result is the same every run). Planning is not
// thread-safe in FFTW; executing a plan on other arrays is.
struct FftPlans {
  fftwf_plan forward = nullptr, inverse = nullptr;
};

// The cache owns its plans and destroys them at exit (otherwise LeakSanitizer reports them once the
// map is gone).
struct FftPlanCache {
  std::map<int, FftPlans> by_size;
  ~FftPlanCache() {
    for (auto& entry : by_size) {
      if (entry.second.forward) fftwf_destroy_plan(entry.second.forward);
      if (entry.second.inverse) fftwf_destroy_plan(entry.second.inverse);
    }
  }
};

const FftPlans& plans_for(int m) {
  static std::mutex mutex;
  static FftPlanCache plan_cache;
  std::map<int, FftPlans>& cache = plan_cache.by_size;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(m);
  if (it != cache.end()) return it->second;
  FftBuffer real, spectrum;
  real.resize(static_cast<std::size_t>(m) * m);
  spectrum.resize(static_cast<std::size_t>(m) * (m / 2 + 1) * 2);
  FftPlans plans;
  plans.forward = fftwf_plan_dft_r2c_2d(m, m, real.data, spectrum.complex(), FFTW_ESTIMATE);
  plans.inverse = fftwf_plan_dft_c2r_2d(m, m, spectrum.complex(), real.data, FFTW_ESTIMATE);
  if (!plans.forward || !plans.inverse) throw std::runtime_error("FFTW could not plan a transform");
  return cache.emplace(m, plans).first->second;
}

struct FftWorkspace {
  std::vector<double> weights_x, weights_y;  // n x p Lagrange weights
  std::vector<int> box_x, box_y;
  std::vector<int> order, row_start;          // points sorted by box row (stable), start per box row
  FftBuffer grids[3], kernels[2], spectra[5], products[4], potentials[4];
};

void lagrange_weights(double u, int p, double* w) {
  // Nodes at (t + 0.5) / p in the unit box.
  for (int t = 0; t < p; ++t) {
    const double ut = (t + 0.5) / p;
    double num = 1, den = 1;
    for (int s = 0; s < p; ++s) {
      if (s == t) continue;
      const double us = (s + 0.5) / p;
      num *= u - us;
      den *= ut - us;
    }
    w[t] = num / den;
  }
}

// Kernel on node offsets (squared when `squared`), wrapped for a linear convolution on the padded grid.
void fill_kernel(float* kernel, int m, int nodes, double spacing, bool squared) {
  std::fill(kernel, kernel + static_cast<std::size_t>(m) * m, 0.f);
  for (int r = 0; r < m; ++r) {
    int dy;
    if (r < nodes) dy = r;
    else if (r > m - nodes) dy = r - m;
    else continue;
    float* row = kernel + static_cast<std::size_t>(r) * m;
    for (int c = 0; c < m; ++c) {
      int dx;
      if (c < nodes) dx = c;
      else if (c > m - nodes) dx = c - m;
      else continue;
      const double d2 = (static_cast<double>(dx) * dx + static_cast<double>(dy) * dy) * spacing * spacing;
      const double k = 1.0 / (1.0 + d2);
      row[c] = static_cast<float>(squared ? k * k : k);
    }
  }
}

// Even FFT sizes with small prime factors (2, 3, 5, 7) at least n.
int fft_size(int n) {
  for (int m = std::max(2, n + (n & 1));; m += 2) {
    int r = m;
    for (int f : {2, 3, 5, 7}) {
      while (r % f == 0) r /= f;
    }
    if (r == 1) return m;
  }
}

// rep: n x 2 unnormalised repulsion sum_j K2 (y_i - y_j); returns Z = sum_{i != j} K(y_i, y_j).
double fft_repulsion(const std::vector<double>& y, const FftRepulsionOptions& options, int threads,
                     FftWorkspace& ws, std::vector<double>& rep) {
  const int n = static_cast<int>(y.size() / 2);
  const int p = options.interpolation_points;
  double min_x = y[0], max_x = y[0], min_y = y[1], max_y = y[1];
  for (int i = 1; i < n; ++i) {
    min_x = std::min(min_x, y[2 * i]);
    max_x = std::max(max_x, y[2 * i]);
    min_y = std::min(min_y, y[2 * i + 1]);
    max_y = std::max(max_y, y[2 * i + 1]);
  }
  double span = std::max({max_x - min_x, max_y - min_y, 1e-12});
  span *= 1.0 + 1e-9;  // the largest coordinate falls inside the last box
  const double centre_x = 0.5 * (min_x + max_x), centre_y = 0.5 * (min_y + max_y);
  const double lo_x = centre_x - 0.5 * span, lo_y = centre_y - 0.5 * span;
  const int boxes = std::max(options.min_boxes, static_cast<int>(std::ceil(span * options.boxes_per_unit)));
  const double box = span / boxes;
  const int nodes = boxes * p;
  const double spacing = box / p;
  const int m = fft_size(2 * nodes);
  const std::size_t cells = static_cast<std::size_t>(m) * m;
  const std::size_t spectrum_floats = static_cast<std::size_t>(m) * (m / 2 + 1) * 2;
  const FftPlans& plans = plans_for(m);

  ws.weights_x.resize(static_cast<std::size_t>(n) * p);
  ws.weights_y.resize(static_cast<std::size_t>(n) * p);
  ws.box_x.resize(n);
  ws.box_y.resize(n);
  parallel_for(n, threads, [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) {
      const double fx = (y[2 * i] - lo_x) / box, fy = (y[2 * i + 1] - lo_y) / box;
      const int bx = std::min(boxes - 1, std::max(0, static_cast<int>(fx)));
      const int by = std::min(boxes - 1, std::max(0, static_cast<int>(fy)));
      ws.box_x[i] = bx;
      ws.box_y[i] = by;
      lagrange_weights(fx - bx, p, &ws.weights_x[i * p]);
      lagrange_weights(fy - by, p, &ws.weights_y[i * p]);
    }
  });
  // Counting sort by box row: each box row owns its p node rows, so rows can be spread in parallel
  // without races, and within a row points are added in index order (deterministic).
  ws.row_start.assign(boxes + 1, 0);
  for (int i = 0; i < n; ++i) ++ws.row_start[ws.box_y[i] + 1];
  for (int b = 0; b < boxes; ++b) ws.row_start[b + 1] += ws.row_start[b];
  ws.order.resize(n);
  {
    std::vector<int> fill(ws.row_start.begin(), ws.row_start.end() - 1);
    for (int i = 0; i < n; ++i) ws.order[fill[ws.box_y[i]]++] = i;
  }
  for (auto& g : ws.grids) {
    g.resize(cells);
    std::fill(g.data, g.data + cells, 0.f);
  }
  for (auto& b : ws.kernels) b.resize(cells);
  for (auto& b : ws.potentials) b.resize(cells);
  for (auto& b : ws.spectra) b.resize(spectrum_floats);
  for (auto& b : ws.products) b.resize(spectrum_floats);
  parallel_for(boxes, threads, [&](std::size_t begin, std::size_t end) {
    for (std::size_t b = begin; b < end; ++b) {
      for (int o = ws.row_start[b]; o < ws.row_start[b + 1]; ++o) {
        const int i = ws.order[o];
        const double charges[3] = {1.0, y[2 * i] - centre_x, y[2 * i + 1] - centre_y};
        const double* wx = &ws.weights_x[static_cast<std::size_t>(i) * p];
        const double* wy = &ws.weights_y[static_cast<std::size_t>(i) * p];
        const int x0 = ws.box_x[i] * p, y0 = ws.box_y[i] * p;
        for (int a = 0; a < p; ++a) {
          for (int c = 0; c < 3; ++c) {
            float* row = ws.grids[c].data + static_cast<std::size_t>(y0 + a) * m + x0;
            const double f = wy[a] * charges[c];
            for (int t = 0; t < p; ++t) row[t] += static_cast<float>(f * wx[t]);
          }
        }
      }
    }
  });
  // Forward transforms (two kernels, three charge grids), then products and inverse transforms
  // (three K2 potentials and one K potential); the transforms are independent tasks.
  parallel_for(5, threads, [&](std::size_t begin, std::size_t end) {
    for (std::size_t task = begin; task < end; ++task) {
      if (task < 2) {
        fill_kernel(ws.kernels[task].data, m, nodes, spacing, /*squared=*/task == 0);
        fftwf_execute_dft_r2c(plans.forward, ws.kernels[task].data, ws.spectra[task].complex());
      } else {
        fftwf_execute_dft_r2c(plans.forward, ws.grids[task - 2].data, ws.spectra[task].complex());
      }
    }
  });
  const float norm = 1.f / static_cast<float>(cells);
  parallel_for(4, threads, [&](std::size_t begin, std::size_t end) {
    for (std::size_t task = begin; task < end; ++task) {
      const fftwf_complex* charge = ws.spectra[2 + (task < 3 ? task : 0)].complex();
      const fftwf_complex* kernel = ws.spectra[task < 3 ? 0 : 1].complex();
      fftwf_complex* product = ws.products[task].complex();
      for (std::size_t e = 0; e < spectrum_floats / 2; ++e) {
        const float re = charge[e][0] * kernel[e][0] - charge[e][1] * kernel[e][1];
        const float im = charge[e][0] * kernel[e][1] + charge[e][1] * kernel[e][0];
        product[e][0] = re * norm;
        product[e][1] = im * norm;
      }
      fftwf_execute_dft_c2r(plans.inverse, product, ws.potentials[task].data);
    }
  });
  rep.resize(static_cast<std::size_t>(n) * 2);
  std::vector<double> z_part(n);
  parallel_for(n, threads, [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) {
      const double* wx = &ws.weights_x[i * p];
      const double* wy = &ws.weights_y[i * p];
      const int x0 = ws.box_x[i] * p, y0 = ws.box_y[i] * p;
      double phi[4] = {0, 0, 0, 0};
      for (int a = 0; a < p; ++a) {
        for (int c = 0; c < 4; ++c) {
          const float* row = ws.potentials[c].data + static_cast<std::size_t>(y0 + a) * m + x0;
          double s = 0;
          for (int t = 0; t < p; ++t) s += wx[t] * row[t];
          phi[c] += wy[a] * s;
        }
      }
      const double cx = y[2 * i] - centre_x, cy = y[2 * i + 1] - centre_y;
      rep[2 * i] = cx * phi[0] - phi[1];
      rep[2 * i + 1] = cy * phi[0] - phi[2];
      z_part[i] = phi[3] - 1.0;
    }
  });
  double z = 0;
  for (double v : z_part) z += v;
  return z;
}

double exact_repulsion(const std::vector<double>& y, int threads, std::vector<double>& rep) {
  const int n = static_cast<int>(y.size() / 2);
  rep.resize(static_cast<std::size_t>(n) * 2);
  std::vector<double> z_part(n);
  parallel_for(n, threads, [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) {
      double rx = 0, ry = 0, z = 0;
      const double xi = y[2 * i], yi = y[2 * i + 1];
      for (int j = 0; j < n; ++j) {
        if (static_cast<std::size_t>(j) == i) continue;
        const double dx = xi - y[2 * j], dy = yi - y[2 * j + 1];
        const double k = 1.0 / (1.0 + dx * dx + dy * dy);
        z += k;
        rx += k * k * dx;
        ry += k * k * dy;
      }
      rep[2 * i] = rx;
      rep[2 * i + 1] = ry;
      z_part[i] = z;
    }
  });
  double z = 0;
  for (double v : z_part) z += v;
  return z;
}

// Per-thread FFT workspace is not needed: the spreading is parallel inside one workspace.
FftWorkspace& shared_workspace() {
  thread_local FftWorkspace ws;
  return ws;
}

std::vector<double> gaussian_init(int n, std::uint64_t seed, double std) {
  std::mt19937_64 gen(seed);
  std::vector<double> out(static_cast<std::size_t>(n) * 2);
  for (std::size_t i = 0; i < out.size(); i += 2) {
    const double u1 = (static_cast<double>(gen() >> 11) + 0.5) * (1.0 / 9007199254740992.0);
    const double u2 = (static_cast<double>(gen() >> 11) + 0.5) * (1.0 / 9007199254740992.0);
    const double r = std::sqrt(-2.0 * std::log(u1)) * std;
    out[i] = r * std::cos(6.283185307179586 * u2);
    out[i + 1] = r * std::sin(6.283185307179586 * u2);
  }
  return out;
}

}  // namespace

TsneMethod parse_tsne_method(const std::string& text) {
  if (text == "auto") return TsneMethod::automatic;
  if (text == "exact") return TsneMethod::exact;
  if (text == "fft") return TsneMethod::fft;
  throw UsageError("unknown t-SNE method '" + text + "' (expected auto, exact or fft)");
}

const char* tsne_method_name(TsneMethod method) {
  switch (method) {
    case TsneMethod::automatic: return "auto";
    case TsneMethod::exact: return "exact";
    case TsneMethod::fft: return "fft";
  }
  return "?";
}

ConditionalAffinities perplexity_affinities(const KnnGraph& knn, double perplexity, int threads) {
  if (!(perplexity > 0)) throw UsageError("perplexity must be positive");
  threads = resolve_thread_count(threads);
  const int n = knn.rows, k = knn.k;
  ConditionalAffinities out;
  out.p.rows = n;
  out.p.row_ptr.resize(n + 1);
  for (int i = 0; i <= n; ++i) out.p.row_ptr[i] = static_cast<std::int64_t>(i) * k;
  out.p.cols = knn.indices;
  out.p.values.resize(static_cast<std::size_t>(n) * k);
  out.beta.resize(n);
  out.entropy.resize(n);
  const double target = std::log(perplexity);
  parallel_for(n, threads, [&](std::size_t begin, std::size_t end) {
    std::vector<double> shifted(k), prob(k);
    for (std::size_t i = begin; i < end; ++i) {
      const float* d = &knn.distances[i * k];
      const double d0 = d[0];
      for (int j = 0; j < k; ++j) shifted[j] = static_cast<double>(d[j]) - d0;
      double beta = 1.0, lo = 0.0, hi = std::numeric_limits<double>::infinity();
      double entropy = 0;
      for (int step = 0; step < 200; ++step) {
        double sum = 0, weighted = 0;
        for (int j = 0; j < k; ++j) {
          prob[j] = std::exp(-beta * shifted[j]);
          sum += prob[j];
          weighted += shifted[j] * prob[j];
        }
        entropy = std::log(sum) + beta * weighted / sum;
        const double diff = entropy - target;
        if (std::abs(diff) < 1e-5) break;
        if (diff > 0) {
          lo = beta;
          beta = std::isinf(hi) ? beta * 2 : 0.5 * (beta + hi);
        } else {
          hi = beta;
          beta = 0.5 * (beta + lo);
        }
      }
      double sum = 0;
      for (int j = 0; j < k; ++j) sum += prob[j];
      for (int j = 0; j < k; ++j) out.p.values[i * k + j] = prob[j] / sum;
      out.beta[i] = beta;
      out.entropy[i] = entropy;
    }
  });
  return out;
}

SparseMatrix symmetrize_affinities(const SparseMatrix& conditional) {
  const int n = conditional.rows;
  std::vector<std::int64_t> count(n + 1, 0);
  for (int i = 0; i < n; ++i) {
    for (std::int64_t e = conditional.row_ptr[i]; e < conditional.row_ptr[i + 1]; ++e) {
      ++count[i + 1];
      ++count[conditional.cols[e] + 1];
    }
  }
  for (int i = 0; i < n; ++i) count[i + 1] += count[i];
  std::vector<std::pair<int, double>> entries(count[n]);
  {
    std::vector<std::int64_t> fill(count.begin(), count.end() - 1);
    for (int i = 0; i < n; ++i) {
      for (std::int64_t e = conditional.row_ptr[i]; e < conditional.row_ptr[i + 1]; ++e) {
        const int j = conditional.cols[e];
        const double v = conditional.values[e];
        entries[fill[i]++] = {j, v};
        entries[fill[j]++] = {i, v};
      }
    }
  }
  const double scale = 1.0 / (2.0 * n);
  SparseMatrix out;
  out.rows = n;
  out.row_ptr.assign(n + 1, 0);
  std::vector<std::int64_t> kept(n, 0);
  for (int i = 0; i < n; ++i) {
    auto first = entries.begin() + count[i], last = entries.begin() + count[i + 1];
    // Stable so that the two halves of a pair are always added in the same order.
    std::stable_sort(first, last, [](const auto& a, const auto& b) { return a.first < b.first; });
    std::int64_t w = count[i];
    for (auto it = first; it != last; ++it) {
      if (w > count[i] && entries[w - 1].first == it->first) {
        entries[w - 1].second += it->second;
      } else {
        entries[w++] = *it;
      }
    }
    kept[i] = w - count[i];
    out.row_ptr[i + 1] = out.row_ptr[i] + kept[i];
  }
  out.cols.resize(out.row_ptr[n]);
  out.values.resize(out.row_ptr[n]);
  for (int i = 0; i < n; ++i) {
    for (std::int64_t e = 0; e < kept[i]; ++e) {
      out.cols[out.row_ptr[i] + e] = entries[count[i] + e].first;
      out.values[out.row_ptr[i] + e] = entries[count[i] + e].second * scale;
    }
  }
  return out;
}

void tsne_gradient(const SparseMatrix& p, const std::vector<double>& y, double exaggeration, TsneMethod method,
                   const FftRepulsionOptions& fft, int threads, std::vector<double>& gradient, double* kl) {
  const int n = p.rows;
  if (static_cast<int>(y.size()) != 2 * n) throw UsageError("t-SNE gradient: embedding size does not match P");
  threads = resolve_thread_count(threads);
  std::vector<double> rep;
  double z;
  if (method == TsneMethod::exact) {
    z = exact_repulsion(y, threads, rep);
  } else if (method == TsneMethod::fft) {
    z = fft_repulsion(y, fft, threads, shared_workspace(), rep);
  } else {
    throw UsageError("t-SNE gradient: method must be exact or fft");
  }
  gradient.resize(static_cast<std::size_t>(n) * 2);
  std::vector<double> kl_part(kl ? n : 0);
  const double inv_z = 1.0 / z;
  parallel_for(n, threads, [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) {
      double ax = 0, ay = 0, kl_i = 0;
      const double xi = y[2 * i], yi = y[2 * i + 1];
      for (std::int64_t e = p.row_ptr[i]; e < p.row_ptr[i + 1]; ++e) {
        const int j = p.cols[e];
        const double dx = xi - y[2 * j], dy = yi - y[2 * j + 1];
        const double k = 1.0 / (1.0 + dx * dx + dy * dy);
        const double w = p.values[e] * k;
        ax += w * dx;
        ay += w * dy;
        if (kl) kl_i += p.values[e] * std::log(std::max(p.values[e], 1e-300) / (k * inv_z));
      }
      gradient[2 * i] = exaggeration * ax - rep[2 * i] * inv_z;
      gradient[2 * i + 1] = exaggeration * ay - rep[2 * i + 1] * inv_z;
      if (kl) kl_part[i] = kl_i;
    }
  });
  if (kl) {
    double s = 0;
    for (double v : kl_part) s += v;
    *kl = s;
  }
}

TsneResult run_tsne(const float* data, int rows, int dims, const TsneOptions& options) {
  if (rows < 4) throw UsageError("t-SNE needs at least 4 points, got " + std::to_string(rows));
  if (dims < 1) throw UsageError("t-SNE needs at least one feature per point");
  if (options.iterations < 1) throw UsageError("t-SNE iterations must be at least 1");
  if (!(options.perplexity > 0)) throw UsageError("t-SNE perplexity must be positive");
  if (options.init != "pca" && options.init != "random") {
    throw UsageError("unknown t-SNE init '" + options.init + "' (expected pca or random)");
  }
  const std::size_t total = static_cast<std::size_t>(rows) * dims;
  for (std::size_t i = 0; i < total; ++i) {
    if (!std::isfinite(data[i])) {
      throw UsageError("t-SNE input has a non-finite value at row " + std::to_string(i / dims) + ", column " +
                       std::to_string(i % dims));
    }
  }
  const int threads = resolve_thread_count(options.threads);
  TsneResult result;
  result.rows = rows;
  result.input_dims = dims;

  auto t0 = std::chrono::steady_clock::now();
  const float* x = data;
  int d = dims;
  PcaResult reduced;
  if (options.pca_dims > 0 && dims > options.pca_dims) {
    PcaOptions pca;
    pca.components = options.pca_dims;
    pca.seed = options.seed;
    pca.threads = threads;
    reduced = compute_pca(data, rows, dims, pca);
    x = reduced.projection.data();
    d = reduced.components;
  }
  result.reduced_dims = d;
  result.pca_s = seconds_since(t0);

  double perplexity = options.perplexity;
  const double max_perplexity = (rows - 1) / 3.0;
  if (perplexity > max_perplexity) {
    spdlog::warn("t-SNE: perplexity {} is too large for {} points; using {:.3g}", perplexity, rows, max_perplexity);
    perplexity = max_perplexity;
  }
  result.perplexity = perplexity;
  // As scikit-learn: 3 * perplexity neighbours plus one.
  const int k = std::min(rows - 1, std::max(1, static_cast<int>(std::floor(3.0 * perplexity + 1.0))));
  result.neighbours = k;

  t0 = std::chrono::steady_clock::now();
  const KnnGraph knn = exact_knn(x, rows, d, k, threads);
  result.knn_s = seconds_since(t0);
  t0 = std::chrono::steady_clock::now();
  const SparseMatrix p = symmetrize_affinities(perplexity_affinities(knn, perplexity, threads).p);
  result.affinities_s = seconds_since(t0);

  TsneMethod method = options.method;
  if (method == TsneMethod::automatic) {
    method = rows <= options.exact_max_points ? TsneMethod::exact : TsneMethod::fft;
  }
  result.method = method;
  const double lr = options.learning_rate > 0 ? options.learning_rate
                                              : std::max(200.0, rows / std::max(1.0, options.early_exaggeration));
  result.learning_rate = lr;

  // Initial layout.
  std::vector<double> y;
  if (options.init == "pca") {
    PcaOptions pca;
    pca.components = 2;
    pca.seed = options.seed;
    pca.threads = threads;
    const PcaResult init = compute_pca(x, rows, d, pca);
    y.assign(static_cast<std::size_t>(rows) * 2, 0.0);
    for (int i = 0; i < rows; ++i) {
      for (int c = 0; c < init.components; ++c) y[2 * i + c] = init.projection[static_cast<std::size_t>(i) * init.components + c];
    }
    double mean = 0, sq = 0;
    for (int i = 0; i < rows; ++i) mean += y[2 * i];
    mean /= rows;
    for (int i = 0; i < rows; ++i) sq += (y[2 * i] - mean) * (y[2 * i] - mean);
    const double std = std::sqrt(sq / rows);
    const double scale = std > 0 ? 1e-4 / std : 0.0;
    for (auto& v : y) v *= scale;
    if (std <= 0) y = gaussian_init(rows, options.seed, 1e-4);
  } else {
    y = gaussian_init(rows, options.seed, 1e-4);
  }

  t0 = std::chrono::steady_clock::now();
  std::vector<double> update(y.size(), 0.0), gains(y.size(), 1.0), gradient;
  for (int it = 0; it < options.iterations; ++it) {
    const bool early = it < options.exaggeration_iterations;
    const double exaggeration = early ? options.early_exaggeration : options.late_exaggeration;
    const double momentum = early ? options.momentum : options.final_momentum;
    const bool want_kl = (options.kl_every > 0 && (it + 1) % options.kl_every == 0) || it + 1 == options.iterations;
    double kl = -1;
    tsne_gradient(p, y, exaggeration, method, options.fft, threads, gradient, want_kl ? &kl : nullptr);
    for (std::size_t c = 0; c < y.size(); ++c) {
      const bool same_sign = (gradient[c] > 0) == (update[c] > 0);
      gains[c] = same_sign ? std::max(options.min_gain, gains[c] * 0.8) : gains[c] + 0.2;
      update[c] = momentum * update[c] - lr * gains[c] * gradient[c];
      y[c] += update[c];
    }
    double mx = 0, my = 0;
    for (int i = 0; i < rows; ++i) {
      mx += y[2 * i];
      my += y[2 * i + 1];
    }
    mx /= rows;
    my /= rows;
    for (int i = 0; i < rows; ++i) {
      y[2 * i] -= mx;
      y[2 * i + 1] -= my;
    }
    if (want_kl) {
      result.kl_history.emplace_back(it + 1, kl);
      result.kl = kl;
    }
    if (options.progress) {
      TsneProgress progress;
      progress.iteration = it + 1;
      progress.iterations = options.iterations;
      progress.kl = kl;
      progress.elapsed_s = seconds_since(t0);
      options.progress(progress);
    }
  }
  result.optimise_s = seconds_since(t0);
  result.coordinates.resize(y.size());
  for (std::size_t c = 0; c < y.size(); ++c) result.coordinates[c] = static_cast<float>(y[c]);
  return result;
}

}  // namespace cnnvis
