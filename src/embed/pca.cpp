#include "cnnvis/embed/pca.h"

#include <algorithm>
#include <cmath>
#include <random>

#include <opencv2/core.hpp>

#include "cnnvis/core/errors.h"
#include "cnnvis/core/parallel.h"

namespace cnnvis {

namespace {

// Standard normal numbers from a fixed generator and a fixed transform (std::normal_distribution is
// implementation-defined, which would make results differ between standard libraries).
std::vector<float> gaussian_matrix(std::size_t count, std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::vector<float> out(count);
  const double two_pi = 6.283185307179586;
  for (std::size_t i = 0; i < count; i += 2) {
    const double u1 = (static_cast<double>(gen() >> 11) + 0.5) * (1.0 / 9007199254740992.0);
    const double u2 = (static_cast<double>(gen() >> 11) + 0.5) * (1.0 / 9007199254740992.0);
    const double r = std::sqrt(-2.0 * std::log(u1));
    out[i] = static_cast<float>(r * std::cos(two_pi * u2));
    if (i + 1 < count) out[i + 1] = static_cast<float>(r * std::sin(two_pi * u2));
  }
  return out;
}

// out (rows x l) = (X - 1 mean^T) W, centred on the fly (no cancellation for data far from 0), W dims x l row-major.
void centred_times(const float* x, int rows, int dims, const std::vector<float>& mean, const std::vector<float>& w,
                   int l, std::vector<float>& out, int threads) {
  out.assign(static_cast<std::size_t>(rows) * l, 0.f);
  parallel_for(rows, threads, [&](std::size_t begin, std::size_t end) {
    std::vector<float> acc(l);
    for (std::size_t r = begin; r < end; ++r) {
      std::fill(acc.begin(), acc.end(), 0.f);
      const float* xr = x + r * dims;
      for (int d = 0; d < dims; ++d) {
        const float v = xr[d] - mean[d];
        const float* wd = w.data() + static_cast<std::size_t>(d) * l;
        for (int j = 0; j < l; ++j) acc[j] += v * wd[j];
      }
      float* o = out.data() + r * l;
      std::copy(acc.begin(), acc.end(), o);
    }
  });
}

// out (dims x l) = (X - 1 mean^T)^T Q, Q rows x l row-major. Each thread owns a range of dims.
void centred_transpose_times(const float* x, int rows, int dims, const std::vector<float>& mean,
                             const std::vector<float>& q, int l, std::vector<float>& out, int threads) {
  out.assign(static_cast<std::size_t>(dims) * l, 0.f);
  parallel_for(dims, threads, [&](std::size_t begin, std::size_t end) {
    const std::size_t span = end - begin;
    std::vector<float> acc(span * l, 0.f);
    for (int r = 0; r < rows; ++r) {
      const float* xr = x + static_cast<std::size_t>(r) * dims + begin;
      const float* qr = q.data() + static_cast<std::size_t>(r) * l;
      for (std::size_t d = 0; d < span; ++d) {
        const float v = xr[d] - mean[begin + d];
        float* a = acc.data() + d * l;
        for (int j = 0; j < l; ++j) a[j] += v * qr[j];
      }
    }
    for (std::size_t d = 0; d < span; ++d) {
      for (int j = 0; j < l; ++j) {
        out[(begin + d) * l + j] = acc[d * l + j];
      }
    }
  });
}

// Orthonormalises the columns of m (rows x l, row-major) in place: modified Gram-Schmidt, twice.
void orthonormalise_columns(std::vector<float>& m, std::size_t rows, int l) {
  std::vector<double> col(rows);
  for (int pass = 0; pass < 2; ++pass) {
    for (int j = 0; j < l; ++j) {
      for (std::size_t r = 0; r < rows; ++r) col[r] = m[r * l + j];
      for (int k = 0; k < j; ++k) {
        double dot = 0;
        for (std::size_t r = 0; r < rows; ++r) dot += col[r] * m[r * l + k];
        for (std::size_t r = 0; r < rows; ++r) col[r] -= dot * m[r * l + k];
      }
      double norm = 0;
      for (std::size_t r = 0; r < rows; ++r) norm += col[r] * col[r];
      norm = std::sqrt(norm);
      const double inv = norm > 1e-30 ? 1.0 / norm : 0.0;
      for (std::size_t r = 0; r < rows; ++r) m[r * l + j] = static_cast<float>(col[r] * inv);
    }
  }
}

}  // namespace

PcaResult compute_pca(const float* data, int rows, int dims, const PcaOptions& options) {
  if (rows < 1 || dims < 1) throw UsageError("PCA needs at least one row and one column");
  if (options.components < 1) throw UsageError("PCA needs at least one component");
  const int threads = resolve_thread_count(options.threads);
  const int k = std::min({options.components, rows, dims});

  PcaResult result;
  result.rows = rows;
  result.components = k;
  result.mean.assign(dims, 0.f);
  {
    std::vector<double> sum(dims, 0.0);
    for (int r = 0; r < rows; ++r) {
      const float* xr = data + static_cast<std::size_t>(r) * dims;
      for (int d = 0; d < dims; ++d) sum[d] += xr[d];
    }
    for (int d = 0; d < dims; ++d) result.mean[d] = static_cast<float>(sum[d] / rows);
  }
  const double denom = rows > 1 ? rows - 1.0 : 1.0;

  cv::Mat eigenvalues, eigenvectors;  // rows of eigenvectors: directions in `basis` coordinates
  std::vector<float> basis;           // dims x l: the subspace searched (identity on the exact path)
  int l = 0;
  if (dims <= options.exact_max_dims) {
    l = dims;
    cv::Mat cov(dims, dims, CV_64F, cv::Scalar(0));
    parallel_for(dims, threads, [&](std::size_t begin, std::size_t end) {
      std::vector<double> centred(dims);
      for (int r = 0; r < rows; ++r) {
        const float* xr = data + static_cast<std::size_t>(r) * dims;
        for (int d = 0; d < dims; ++d) centred[d] = static_cast<double>(xr[d]) - result.mean[d];
        for (std::size_t a = begin; a < end; ++a) {
          double* row = cov.ptr<double>(static_cast<int>(a));
          const double va = centred[a];
          for (int b = 0; b < dims; ++b) row[b] += va * centred[b];
        }
      }
    });
    cov /= denom;
    cv::eigen(cov, eigenvalues, eigenvectors);
    basis.assign(static_cast<std::size_t>(dims) * dims, 0.f);
    for (int d = 0; d < dims; ++d) basis[static_cast<std::size_t>(d) * dims + d] = 1.f;
  } else {
    l = std::min({k + options.oversampling, rows, dims});
    std::vector<float> omega = gaussian_matrix(static_cast<std::size_t>(dims) * l, options.seed);
    std::vector<float> y, z;
    centred_times(data, rows, dims, result.mean, omega, l, y, threads);
    orthonormalise_columns(y, rows, l);
    for (int it = 0; it < options.power_iterations; ++it) {
      centred_transpose_times(data, rows, dims, result.mean, y, l, z, threads);
      orthonormalise_columns(z, dims, l);
      centred_times(data, rows, dims, result.mean, z, l, y, threads);
      orthonormalise_columns(y, rows, l);
    }
    // B^T = Xc^T Q (dims x l); the small matrix B B^T (l x l) has the squared singular values.
    centred_transpose_times(data, rows, dims, result.mean, y, l, z, threads);
    orthonormalise_columns(z, dims, l);  // basis of the row space estimate
    std::vector<float> proj;             // Xc Z: rows x l
    centred_times(data, rows, dims, result.mean, z, l, proj, threads);
    cv::Mat small(l, l, CV_64F, cv::Scalar(0));
    for (int r = 0; r < rows; ++r) {
      const float* pr = proj.data() + static_cast<std::size_t>(r) * l;
      for (int a = 0; a < l; ++a) {
        double* row = small.ptr<double>(a);
        for (int b = 0; b < l; ++b) row[b] += static_cast<double>(pr[a]) * pr[b];
      }
    }
    small /= denom;
    cv::eigen(small, eigenvalues, eigenvectors);
    basis = std::move(z);
  }

  // Components in input coordinates: basis (dims x l) times eigenvector (l).
  result.components_matrix.assign(static_cast<std::size_t>(k) * dims, 0.f);
  result.explained_variance.resize(k);
  for (int c = 0; c < k; ++c) {
    result.explained_variance[c] = std::max(0.0, eigenvalues.at<double>(c));
    const double* ev = eigenvectors.ptr<double>(c);
    float* comp = result.components_matrix.data() + static_cast<std::size_t>(c) * dims;
    double norm = 0, largest = 0;
    for (int d = 0; d < dims; ++d) {
      double v = 0;
      const float* bd = basis.data() + static_cast<std::size_t>(d) * l;
      for (int j = 0; j < l; ++j) v += bd[j] * ev[j];
      comp[d] = static_cast<float>(v);
      norm += v * v;
      if (std::abs(v) > std::abs(largest)) largest = v;
    }
    const double scale = (largest < 0 ? -1.0 : 1.0) / std::sqrt(std::max(norm, 1e-300));
    for (int d = 0; d < dims; ++d) comp[d] = static_cast<float>(comp[d] * scale);
  }
  // Projection = Xc C^T.
  std::vector<float> comp_t(static_cast<std::size_t>(dims) * k);
  for (int c = 0; c < k; ++c) {
    for (int d = 0; d < dims; ++d) comp_t[static_cast<std::size_t>(d) * k + c] = result.components_matrix[static_cast<std::size_t>(c) * dims + d];
  }
  centred_times(data, rows, dims, result.mean, comp_t, k, result.projection, threads);
  return result;
}

}  // namespace cnnvis
