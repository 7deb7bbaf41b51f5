#include "cnnvis/embed/tsne_repulsion.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>

#include <fftw3.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/core/parallel.h"

namespace cnnvis {

namespace {

// ---- FFT-interpolated repulsion ---------------------------------------------------------------------
//
// With the Cauchy kernel K(a, b) = 1 / (1 + |a - b|^2) and its square K2, the repulsive force on a point
// is the field sum_j K2(y_i, y_j) (y_i - y_j), and the normaliser is Z = sum_{i != j} K(y_i, y_j). The
// force is the potential of ONE charge (1 per point) under two kernels, dx K2 (odd in x) and dy K2 (odd
// in y); FIt-SNE instead convolves three charges (1, y_x, y_y) with K2 and forms y_i phi_0 - phi_1, three
// forward transforms instead of one. Z needs no potential at all: it is the charge's energy under K,
// Q^T K Q - N, which Parseval's theorem gives from the charge's spectrum (sum |Q^|^2 K^ / m^2).
// Interpolation: the charge is spread onto an equispaced grid with Lagrange weights over the p nodes
// nearest each point (a stencil centred on the point, not FIt-SNE's nodes inside a fixed box, so the
// same grid gives about half the error); the node-to-node kernel matrix is Toeplitz, so its product is
// a linear convolution done by FFT on a zero-padded m x m grid; forces are read back at the points
// with the same weights.
// The transforms are pruned to where data lives: the charge occupies only the first `nodes` rows and
// columns of the padded grid and only those potentials are read, so row transforms run on `nodes`
// rows. The kernels' spectra, real or imaginary by symmetry, come from cosine and sine transforms of
// one quadrant, and are kept while the grid side and the node spacing stay the same (the spacing is
// fixed once the layout is wide, and moves in steps of 2^(1/8) before). Each 1-D transform is a task
// of its own, so threads share the work evenly, and every value is computed by one fixed plan whatever
// the number of threads.

// A float buffer from fftwf_malloc. Plans are made on such buffers and then executed on lines inside
// them; every line starts at a multiple of 64 bytes, so all have the plans' SIMD alignment.
struct FftBuffer {
  float* data = nullptr;
  std::size_t size = 0;
  FftBuffer() = default;
  FftBuffer(const FftBuffer&) = delete;
  FftBuffer& operator=(const FftBuffer&) = delete;
  ~FftBuffer() { fftwf_free(data); }
  void resize(std::size_t n) {
    if (n <= size && data) return;
    fftwf_free(data);
    data = fftwf_alloc_real(n);
    if (!data) throw std::bad_alloc();
    size = n;
  }
  fftwf_complex* complex(std::size_t offset = 0) { return reinterpret_cast<fftwf_complex*>(data) + offset; }
};

std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

// The shape of the padded grid and the strides of its buffers (floats for real rows, complex values
// for spectra), each a multiple of 64 bytes.
struct FftLayout {
  int m = 0;        // padded grid side, even
  int half = 0;     // m / 2 + 1: the r2c spectrum length, and the length of the quadrant's cosine lines
  int sine = 0;     // m / 2 - 1: the length of the quadrant's sine lines
  std::size_t real_stride = 0, spectrum_stride = 0, line_stride = 0, quadrant_stride = 0;
  explicit FftLayout(int m_) : m(m_), half(m_ / 2 + 1), sine(m_ / 2 - 1) {
    real_stride = round_up(m, 16);
    spectrum_stride = round_up(half, 8);
    line_stride = round_up(m, 8);
    quadrant_stride = round_up(half, 16);
  }
};

// One-dimensional plans for a grid side m (FFTW_ESTIMATE: no timing runs, so the algorithm and therefore
// the result is the same every run). Planning is not thread-safe in FFTW; executing a plan on other
// arrays is.
struct FftPlans {
  fftwf_plan row_forward = nullptr;   // r2c, length m, out of place
  fftwf_plan row_inverse = nullptr;   // c2r, length m, out of place
  fftwf_plan line_forward = nullptr;  // c2c forward, length m, out of place
  fftwf_plan line_inverse = nullptr;  // c2c backward, length m, out of place
  fftwf_plan cosine = nullptr;        // REDFT00 (DCT-I), length m / 2 + 1, in place
  fftwf_plan sine = nullptr;          // RODFT00 (DST-I), length m / 2 - 1, in place
  void destroy() {
    for (fftwf_plan plan : {row_forward, row_inverse, line_forward, line_inverse, cosine, sine}) {
      if (plan) fftwf_destroy_plan(plan);
    }
  }
};

// The cache owns its plans and destroys them at exit (otherwise LeakSanitizer reports them once the
// map is gone).
struct FftPlanCache {
  std::map<int, FftPlans> by_size;
  ~FftPlanCache() {
    for (auto& entry : by_size) entry.second.destroy();
  }
};

const FftPlans& plans_for(int m) {
  static std::mutex mutex;
  static FftPlanCache plan_cache;
  std::map<int, FftPlans>& cache = plan_cache.by_size;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(m);
  if (it != cache.end()) return it->second;
  const FftLayout layout(m);
  FftBuffer real, spectrum, other;
  real.resize(layout.real_stride);
  spectrum.resize(2 * layout.line_stride);
  other.resize(2 * layout.line_stride);
  FftPlans plans;
  plans.row_forward = fftwf_plan_dft_r2c_1d(m, real.data, spectrum.complex(), FFTW_ESTIMATE);
  plans.row_inverse = fftwf_plan_dft_c2r_1d(m, spectrum.complex(), real.data, FFTW_ESTIMATE);
  plans.line_forward = fftwf_plan_dft_1d(m, spectrum.complex(), other.complex(), FFTW_FORWARD, FFTW_ESTIMATE);
  plans.line_inverse = fftwf_plan_dft_1d(m, spectrum.complex(), other.complex(), FFTW_BACKWARD, FFTW_ESTIMATE);
  plans.cosine = fftwf_plan_r2r_1d(layout.half, real.data, real.data, FFTW_REDFT00, FFTW_ESTIMATE);
  plans.sine = fftwf_plan_r2r_1d(layout.sine, real.data, real.data, FFTW_RODFT00, FFTW_ESTIMATE);
  if (!plans.row_forward || !plans.row_inverse || !plans.line_forward || !plans.line_inverse || !plans.cosine ||
      !plans.sine) {
    plans.destroy();
    throw std::runtime_error("FFTW could not plan a transform of size " + std::to_string(m));
  }
  return cache.emplace(m, plans).first->second;
}

struct FftWorkspace {
  std::vector<double> weights_x, weights_y;  // n x p Lagrange weights
  std::vector<int> base_x, base_y;            // first node of each point's stencil
  std::vector<int> order, row_start;          // points sorted by base_y (stable), start per node row
  std::vector<double> z_lines;                // per x frequency: its share of the charge's K energy
  FftBuffer charge;                 // nodes rows x real_stride (columns >= nodes zero up to m)
  FftBuffer row_spectra;            // nodes rows x spectrum_stride: r2c of each charge row
  FftBuffer lines;                  // half lines x line_stride: line kx holds the charge spectrum at all ky
  FftBuffer inverse_rows[2];        // nodes rows x spectrum_stride: the force potentials' row spectra
  FftBuffer potentials[2];          // nodes rows x real_stride: f_x and f_y on the nodes
  // Kernel spectra, kept while the grid side and the node spacing stay the same.
  int kernel_m = 0;
  double kernel_spacing = 0;
  FftBuffer even_rows, odd_rows;    // half rows x quadrant_stride: the kernels' first quadrant
  FftBuffer even_lines, odd_lines;  // its 2-D cosine / sine-cosine transforms, by x frequency
  FftBuffer odd_lines_t;            // odd_lines transposed (for the y-odd kernel)
};

// Lagrange weights of the nodes 0..p-1 at position t (t within the stencil, nodes at integers).
void lagrange_weights(double t, int p, const double* inverse_denominators, double* w) {
  for (int j = 0; j < p; ++j) {
    double num = inverse_denominators[j];
    for (int s = 0; s < p; ++s) {
      if (s != j) num *= t - s;
    }
    w[j] = num;
  }
}

// Even FFT sizes with small prime factors (2, 3, 5, 7) at least n.
int fft_size(int n) {
  for (int m = std::max(4, n + (n & 1));; m += 2) {
    int r = m;
    for (int f : {2, 3, 5, 7}) {
      while (r % f == 0) r /= f;
    }
    if (r == 1) return m;
  }
}

// The spectra of the kernels on the padded m x m grid, as circular kernels (offset r for index r <= m/2,
// r - m above). Only offsets below `nodes` reach a needed potential, so the spectra depend on m and the
// spacing alone and are kept until either changes. K is even in both offsets: its spectrum is the 2-D
// DCT-I of the first quadrant (real). dx K2 is odd in x and even in y: its spectrum is -i times the
// DST-I in x and DCT-I in y of the quadrant without the dx = 0 column; dy K2 is its transpose.
// Results, by x frequency kx (0..m/2) and y frequency: even_lines[kx][ky] for ky in 0..m/2;
// odd_lines[kx - 1][ky] for kx in 1..m/2-1; odd_lines_t[kx][ky - 1] = odd_lines[ky - 1][kx].
void kernel_spectra(const FftLayout& l, const FftPlans& plans, double spacing, int threads, FftWorkspace& ws) {
  if (ws.kernel_m == l.m && ws.kernel_spacing == spacing) return;
  const std::size_t qs = l.quadrant_stride;
  ws.even_rows.resize(l.half * qs);
  ws.odd_rows.resize(l.half * qs);
  ws.even_lines.resize(l.half * qs);
  ws.odd_lines.resize(l.sine * qs);
  ws.odd_lines_t.resize(l.half * qs);
  // Rows dy = 0..m/2: values, then the transform along x.
  parallel_for(l.half, threads, [&](std::size_t begin, std::size_t end) {
    for (std::size_t dy = begin; dy < end; ++dy) {
      float* even = ws.even_rows.data + dy * qs;
      float* odd = ws.odd_rows.data + dy * qs;
      const double y2 = static_cast<double>(dy) * dy * spacing * spacing;
      for (int dx = 0; dx < l.half; ++dx) {
        const double k = 1.0 / (1.0 + static_cast<double>(dx) * dx * spacing * spacing + y2);
        even[dx] = static_cast<float>(k);
        if (dx > 0 && dx <= l.sine) odd[dx - 1] = static_cast<float>(dx * spacing * k * k);
      }
      fftwf_execute_r2r(plans.cosine, even, even);
      fftwf_execute_r2r(plans.sine, odd, odd);
    }
  });
  // Lines by x frequency: gather the column, then the cosine transform along y.
  parallel_for(l.half + l.sine, threads, [&](std::size_t begin, std::size_t end) {
    for (std::size_t task = begin; task < end; ++task) {
      const bool even = task < static_cast<std::size_t>(l.half);
      const std::size_t kx = even ? task : task - l.half;
      const float* rows = even ? ws.even_rows.data : ws.odd_rows.data;
      float* line = (even ? ws.even_lines.data : ws.odd_lines.data) + kx * qs;
      for (int dy = 0; dy < l.half; ++dy) line[dy] = rows[dy * qs + kx];
      fftwf_execute_r2r(plans.cosine, line, line);
    }
  });
  parallel_for(l.half, threads, [&](std::size_t begin, std::size_t end) {
    for (std::size_t kx = begin; kx < end; ++kx) {
      float* out = ws.odd_lines_t.data + kx * qs;
      for (int a = 0; a < l.sine; ++a) out[a] = ws.odd_lines.data[a * qs + kx];
    }
  });
  ws.kernel_m = l.m;
  ws.kernel_spacing = spacing;
}

// The node spacing: 1 / nodes_per_unit once the layout is wide enough, else the layout's extent over
// min_nodes rounded down to a power of 2^(1/8), so that the kernel spectra are reused while the layout
// grows by less than 9 %; never so fine that the grid has more than max_nodes nodes across.
double node_spacing(double span, const FftRepulsionOptions& options) {
  const double fine = span / options.min_nodes;
  const double rounded = std::exp2(std::floor(8.0 * std::log2(fine)) / 8.0);
  return std::max(span / options.max_nodes, std::min(1.0 / options.nodes_per_unit, rounded));
}

// rep: n x 2 unnormalised repulsion sum_j K2 (y_i - y_j); returns Z = sum_{i != j} K(y_i, y_j).
double fft_repulsion_in(const std::vector<double>& y, const FftRepulsionOptions& options, int threads,
                        FftWorkspace& ws, std::vector<double>& rep) {
  const int n = static_cast<int>(y.size() / 2);
  const int p = options.interpolation_points;
  if (p < 1 || p > 16 || !(options.nodes_per_unit > 0) || options.min_nodes < 2 ||
      options.max_nodes < options.min_nodes) {
    throw UsageError("t-SNE FFT options: interpolation points must be in [1, 16], nodes per unit positive and "
                     "2 <= min_nodes <= max_nodes");
  }
  double min_x = y[0], max_x = y[0], min_y = y[1], max_y = y[1];
  for (int i = 1; i < n; ++i) {
    min_x = std::min(min_x, y[2 * i]);
    max_x = std::max(max_x, y[2 * i]);
    min_y = std::min(min_y, y[2 * i + 1]);
    max_y = std::max(max_y, y[2 * i + 1]);
  }
  const double span = std::max({max_x - min_x, max_y - min_y, 1e-12});
  const double centre_x = 0.5 * (min_x + max_x), centre_y = 0.5 * (min_y + max_y);
  // The grid adds `pad` nodes on each side so that every point's stencil lies inside it.
  const double spacing = node_spacing(span, options);
  const int pad = p / 2 + 1;
  const int nodes = static_cast<int>(std::ceil(span / spacing)) + 1 + 2 * pad;
  const double lo_x = centre_x - 0.5 * span - pad * spacing, lo_y = centre_y - 0.5 * span - pad * spacing;
  const FftLayout l(fft_size(2 * nodes));
  const int m = l.m;
  const FftPlans& plans = plans_for(m);
  kernel_spectra(l, plans, spacing, threads, ws);

  std::vector<double> inverse_denominators(p);
  for (int j = 0; j < p; ++j) {
    double d = 1;
    for (int s = 0; s < p; ++s) {
      if (s != j) d *= j - s;
    }
    inverse_denominators[j] = 1.0 / d;
  }
  // Each point's stencil starts at node (base_x, base_y): the p nodes nearest to it in each dimension.
  ws.weights_x.resize(static_cast<std::size_t>(n) * p);
  ws.weights_y.resize(static_cast<std::size_t>(n) * p);
  ws.base_x.resize(n);
  ws.base_y.resize(n);
  parallel_for(n, threads, [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) {
      const double ux = (y[2 * i] - lo_x) / spacing, uy = (y[2 * i + 1] - lo_y) / spacing;
      const int bx = static_cast<int>(std::floor(ux - 0.5 * (p - 1)));
      const int by = static_cast<int>(std::floor(uy - 0.5 * (p - 1)));
      ws.base_x[i] = std::min(nodes - p, std::max(0, bx));
      ws.base_y[i] = std::min(nodes - p, std::max(0, by));
      lagrange_weights(ux - ws.base_x[i], p, inverse_denominators.data(), &ws.weights_x[i * p]);
      lagrange_weights(uy - ws.base_y[i], p, inverse_denominators.data(), &ws.weights_y[i * p]);
    }
  });

  // Counting sort by the stencil's first row (stable). Rows are spread in fixed blocks; a block adds
  // the rows of its own that the stencils starting up to p - 1 rows above it reach, in point order, so
  // each node's sum has a fixed order whatever the number of threads.
  ws.row_start.assign(nodes + 1, 0);
  for (int i = 0; i < n; ++i) ++ws.row_start[ws.base_y[i] + 1];
  for (int r = 0; r < nodes; ++r) ws.row_start[r + 1] += ws.row_start[r];
  ws.order.resize(n);
  {
    std::vector<int> fill(ws.row_start.begin(), ws.row_start.end() - 1);
    for (int i = 0; i < n; ++i) ws.order[fill[ws.base_y[i]]++] = i;
  }
  const std::size_t rs = l.real_stride, ss = l.spectrum_stride, ls = l.line_stride;
  ws.charge.resize(nodes * rs);
  ws.row_spectra.resize(2 * nodes * ss);
  ws.lines.resize(2 * l.half * ls);
  for (auto& b : ws.inverse_rows) b.resize(2 * nodes * ss);
  for (auto& b : ws.potentials) b.resize(nodes * rs);
  constexpr int kBlockRows = 8;
  const int blocks = (nodes + kBlockRows - 1) / kBlockRows;
  parallel_for(blocks, threads, [&](std::size_t begin, std::size_t end) {
    for (std::size_t blk = begin; blk < end; ++blk) {
      const int r0 = static_cast<int>(blk) * kBlockRows, r1 = std::min(nodes, r0 + kBlockRows);
      float* first = ws.charge.data + static_cast<std::size_t>(r0) * rs;
      std::fill(first, first + static_cast<std::size_t>(r1 - r0) * rs, 0.f);
      const int from = ws.row_start[std::max(0, r0 - p + 1)], to = ws.row_start[r1];
      for (int o = from; o < to; ++o) {
        const int i = ws.order[o];
        const double* wx = &ws.weights_x[static_cast<std::size_t>(i) * p];
        const double* wy = &ws.weights_y[static_cast<std::size_t>(i) * p];
        const int x0 = ws.base_x[i], y0 = ws.base_y[i];
        for (int a = std::max(0, r0 - y0); a < std::min(p, r1 - y0); ++a) {
          float* row = ws.charge.data + static_cast<std::size_t>(y0 + a) * rs + x0;
          for (int t = 0; t < p; ++t) row[t] += static_cast<float>(wy[a] * wx[t]);
        }
      }
      for (int r = r0; r < r1; ++r) {
        fftwf_execute_dft_r2c(plans.row_forward, ws.charge.data + static_cast<std::size_t>(r) * rs,
                              ws.row_spectra.complex(static_cast<std::size_t>(r) * ss));
      }
    }
  });
  // Columns become lines (rows >= nodes are zero), transformed along y.
  parallel_for(l.half, threads, [&](std::size_t begin, std::size_t end) {
    FftBuffer scratch;
    scratch.resize(2 * ls);
    fftwf_complex* column = scratch.complex();
    std::fill(scratch.data + 2 * nodes, scratch.data + 2 * m, 0.f);
    const fftwf_complex* rows = ws.row_spectra.complex();
    for (std::size_t kx = begin; kx < end; ++kx) {
      for (int r = 0; r < nodes; ++r) {
        column[r][0] = rows[r * ss + kx][0];
        column[r][1] = rows[r * ss + kx][1];
      }
      fftwf_execute_dft(plans.line_forward, column, ws.lines.complex(kx * ls));
    }
  });
  // Per x frequency: the charge's energy under K (Parseval: sum_t Q_t (K * Q)_t = sum |Q^|^2 K^ / m^2,
  // which is Z + N, so K's potential is never transformed back), then the force kernels' products,
  // transformed back along y, keeping rows < nodes.
  const float norm = 1.f / (static_cast<float>(m) * static_cast<float>(m));
  const int quarter = m / 2;
  ws.z_lines.assign(l.half, 0.0);
  parallel_for(l.half, threads, [&](std::size_t begin, std::size_t end) {
    FftBuffer scratch;
    scratch.resize(4 * ls);
    fftwf_complex* product = scratch.complex();
    fftwf_complex* column = scratch.complex(ls);
    const std::size_t qs = l.quadrant_stride;
    for (std::size_t kx = begin; kx < end; ++kx) {
      const fftwf_complex* q = ws.lines.complex(kx * ls);
      {
        const float* d = ws.even_lines.data + kx * qs;
        double energy = 0;
        for (int ky = 0; ky < m; ++ky) {
          const double power = static_cast<double>(q[ky][0]) * q[ky][0] + static_cast<double>(q[ky][1]) * q[ky][1];
          energy += power * d[ky <= quarter ? ky : m - ky];
        }
        // Columns 1..m/2-1 stand for their mirror images m - kx too.
        ws.z_lines[kx] = (kx == 0 || static_cast<int>(kx) == quarter) ? energy : 2 * energy;
      }
      // Back along y, keeping rows < nodes as row spectra of potential c.
      const auto transform_back = [&](int c) {
        fftwf_execute_dft(plans.line_inverse, product, column);
        fftwf_complex* rows = ws.inverse_rows[c].complex();
        for (int r = 0; r < nodes; ++r) {
          rows[r * ss + kx][0] = column[r][0];
          rows[r * ss + kx][1] = column[r][1];
        }
      };
      // dx K2: -i S[fold(ky)][kx - 1], zero at kx = 0 and m/2.
      if (kx == 0 || static_cast<int>(kx) == quarter) {
        std::fill(scratch.data, scratch.data + 2 * m, 0.f);
      } else {
        const float* s = ws.odd_lines.data + (kx - 1) * qs;
        for (int ky = 0; ky < m; ++ky) {
          const float f = s[ky <= quarter ? ky : m - ky] * norm;
          product[ky][0] = q[ky][1] * f;
          product[ky][1] = -q[ky][0] * f;
        }
      }
      transform_back(0);
      // dy K2: -i sgn(ky) S[kx][fold(ky) - 1], zero at ky = 0 and m/2.
      const float* s = ws.odd_lines_t.data + kx * qs;
      product[0][0] = product[0][1] = 0.f;
      product[quarter][0] = product[quarter][1] = 0.f;
      for (int ky = 1; ky < quarter; ++ky) {
        const float f = s[ky - 1] * norm;
        product[ky][0] = q[ky][1] * f;
        product[ky][1] = -q[ky][0] * f;
      }
      for (int ky = quarter + 1; ky < m; ++ky) {
        const float f = -s[m - ky - 1] * norm;
        product[ky][0] = q[ky][1] * f;
        product[ky][1] = -q[ky][0] * f;
      }
      transform_back(1);
    }
  });
  // Rows back to real potentials.
  parallel_for(static_cast<std::size_t>(2) * nodes, threads, [&](std::size_t begin, std::size_t end) {
    for (std::size_t task = begin; task < end; ++task) {
      const std::size_t c = task / nodes, r = task % nodes;
      fftwf_execute_dft_c2r(plans.row_inverse, ws.inverse_rows[c].complex(r * ss), ws.potentials[c].data + r * rs);
    }
  });
  rep.resize(static_cast<std::size_t>(n) * 2);
  parallel_for(n, threads, [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) {
      const double* wx = &ws.weights_x[i * p];
      const double* wy = &ws.weights_y[i * p];
      const int x0 = ws.base_x[i], y0 = ws.base_y[i];
      double phi[2] = {0, 0};
      for (int a = 0; a < p; ++a) {
        for (int c = 0; c < 2; ++c) {
          const float* row = ws.potentials[c].data + static_cast<std::size_t>(y0 + a) * rs + x0;
          double s = 0;
          for (int t = 0; t < p; ++t) s += wx[t] * row[t];
          phi[c] += wy[a] * s;
        }
      }
      rep[2 * i] = phi[0];
      rep[2 * i + 1] = phi[1];
    }
  });
  double energy = 0;
  for (double v : ws.z_lines) energy += v;
  // Z = energy - N cancels when points lie far apart (Z << N, the self-energy); single-precision
  // spectra can then leave it at or below zero. No pair is farther apart than the layout's diagonal,
  // which bounds Z from below.
  const double z_floor = static_cast<double>(n) * (n - 1) / (1.0 + 2.0 * span * span);
  return std::max(z_floor, energy / (static_cast<double>(m) * m) - n);
}

// Per-thread FFT workspace is not needed: the spreading is parallel inside one workspace.
FftWorkspace& shared_workspace() {
  thread_local FftWorkspace ws;
  return ws;
}

}  // namespace

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

double fft_repulsion(const std::vector<double>& y, const FftRepulsionOptions& options, int threads,
                     std::vector<double>& rep) {
  return fft_repulsion_in(y, options, threads, shared_workspace(), rep);
}

}  // namespace cnnvis
