#include "cnnvis/embed/tsne.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <random>
#include <string>

#include <spdlog/spdlog.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/core/parallel.h"
#include "cnnvis/embed/pca.h"

namespace cnnvis {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
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

// ---- attraction ------------------------------------------------------------------------------------
//
// out[2i], out[2i + 1] = sum_j p_ij K(y_i, y_j) (y_i - y_j) over row i of P. Four neighbours at a time in
// the lanes of a vector, the remainder lane by lane, the lanes added as (0 + 1) + (2 + 3). Only
// element-wise IEEE operations (no fused multiply-add), so the AVX2 build and the baseline build give
// the same bits.
typedef double Vec4d __attribute__((vector_size(32)));

inline __attribute__((always_inline)) void attraction_rows_body(const SparseMatrix& p, const double* y,
                                                                std::size_t begin, std::size_t end, double* out) {
  for (std::size_t i = begin; i < end; ++i) {
    const double xi = y[2 * i], yi = y[2 * i + 1];
    Vec4d ax = {0, 0, 0, 0}, ay = {0, 0, 0, 0};
    std::int64_t e = p.row_ptr[i];
    const std::int64_t last = p.row_ptr[i + 1];
    for (; e + 4 <= last; e += 4) {
      const int* j = &p.cols[e];
      const Vec4d xj = {y[2 * j[0]], y[2 * j[1]], y[2 * j[2]], y[2 * j[3]]};
      const Vec4d yj = {y[2 * j[0] + 1], y[2 * j[1] + 1], y[2 * j[2] + 1], y[2 * j[3] + 1]};
      Vec4d pv;
      std::memcpy(&pv, &p.values[e], sizeof pv);
      const Vec4d dx = xi - xj, dy = yi - yj;
      const Vec4d w = pv * (1.0 / (1.0 + dx * dx + dy * dy));
      ax += w * dx;
      ay += w * dy;
    }
    for (int lane = 0; e < last; ++e, ++lane) {
      const int j = p.cols[e];
      const double dx = xi - y[2 * j], dy = yi - y[2 * j + 1];
      const double w = p.values[e] * (1.0 / (1.0 + dx * dx + dy * dy));
      ax[lane] += w * dx;
      ay[lane] += w * dy;
    }
    out[2 * i] = (ax[0] + ax[1]) + (ax[2] + ax[3]);
    out[2 * i + 1] = (ay[0] + ay[1]) + (ay[2] + ay[3]);
  }
}

#if defined(__GNUC__) && defined(__x86_64__)
__attribute__((target("avx2"))) void attraction_rows_avx2(const SparseMatrix& p, const double* y, std::size_t begin,
                                                           std::size_t end, double* out) {
  attraction_rows_body(p, y, begin, end, out);
}
#endif
void attraction_rows_generic(const SparseMatrix& p, const double* y, std::size_t begin, std::size_t end,
                             double* out) {
  attraction_rows_body(p, y, begin, end, out);
}

using AttractionRows = void (*)(const SparseMatrix&, const double*, std::size_t, std::size_t, double*);
AttractionRows select_attraction_rows() {
#if defined(__GNUC__) && defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2")) return attraction_rows_avx2;
#endif
  return attraction_rows_generic;
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

void tsne_gradient(const SparseMatrix& p, const std::vector<double>& y, double exaggeration, TsneMethod method,
                   const FftRepulsionOptions& fft, int threads, std::vector<double>& gradient, double* kl) {
  const int n = p.rows;
  if (static_cast<int>(y.size()) != 2 * n) throw UsageError("t-SNE gradient: embedding size does not match P");
  threads = resolve_thread_count(threads);
  // Kept between calls: a fresh buffer per iteration costs page faults. (A local reference, so that
  // the loops' threads use this thread's buffer, not their own thread_local.)
  thread_local std::vector<double> rep_buffer;
  std::vector<double>& rep = rep_buffer;
  double z;
  if (method == TsneMethod::exact) {
    z = exact_repulsion(y, threads, rep);
  } else if (method == TsneMethod::fft) {
    z = fft_repulsion(y, fft, threads, rep);
  } else {
    throw UsageError("t-SNE gradient: method must be exact or fft");
  }
  gradient.resize(static_cast<std::size_t>(n) * 2);
  const double inv_z = 1.0 / z;
  static const AttractionRows attraction_rows = select_attraction_rows();
  parallel_for(n, threads, [&](std::size_t begin, std::size_t end) {
    attraction_rows(p, y.data(), begin, end, gradient.data());
    for (std::size_t c = 2 * begin; c < 2 * end; ++c) gradient[c] = exaggeration * gradient[c] - rep[c] * inv_z;
  });
  if (kl) {
    std::vector<double> kl_part(n);
    parallel_for(n, threads, [&](std::size_t begin, std::size_t end) {
      for (std::size_t i = begin; i < end; ++i) {
        double kl_i = 0;
        const double xi = y[2 * i], yi = y[2 * i + 1];
        for (std::int64_t e = p.row_ptr[i]; e < p.row_ptr[i + 1]; ++e) {
          const int j = p.cols[e];
          const double dx = xi - y[2 * j], dy = yi - y[2 * j + 1];
          const double k = 1.0 / (1.0 + dx * dx + dy * dy);
          kl_i += p.values[e] * std::log(std::max(p.values[e], 1e-300) / (k * inv_z));
        }
        kl_part[i] = kl_i;
      }
    });
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
  const ParallelScope parallel_scope(threads);  // one set of threads for the thousands of short loops
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
