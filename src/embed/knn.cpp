#include "cnnvis/embed/knn.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <utility>

#include "cnnvis/core/errors.h"
#include "cnnvis/core/parallel.h"

namespace cnnvis {

namespace {

constexpr int kBlock = 256;      // database points per block (a dims x kBlock slice stays in L2)
constexpr int kQueryTile = 256;  // queries that share one pass over a block
constexpr int kGroup = 4;        // queries computed together (register tile 4 x 16)

// Dot products of kGroup queries (rows of q, stride dims) with kBlock points stored transposed
// (pt[d * kBlock + j]); out[g * kBlock + j]. Written with vector extensions so that the 4 x 16 tile of
// accumulators stays in registers; compiled twice (AVX2+FMA and baseline), chosen at run time.
typedef float Vec8 __attribute__((vector_size(32)));

inline __attribute__((always_inline)) void dot_block_body(const float* q, int dims, const float* pt, float* out) {
  for (int j0 = 0; j0 < kBlock; j0 += 16) {
    Vec8 acc[kGroup][2] = {};
    for (int d = 0; d < dims; ++d) {
      Vec8 p0, p1;
      std::memcpy(&p0, pt + static_cast<std::size_t>(d) * kBlock + j0, sizeof(Vec8));
      std::memcpy(&p1, pt + static_cast<std::size_t>(d) * kBlock + j0 + 8, sizeof(Vec8));
      for (int g = 0; g < kGroup; ++g) {
        const float qv = q[static_cast<std::size_t>(g) * dims + d];
        acc[g][0] += qv * p0;
        acc[g][1] += qv * p1;
      }
    }
    for (int g = 0; g < kGroup; ++g) {
      std::memcpy(out + g * kBlock + j0, &acc[g][0], sizeof(Vec8));
      std::memcpy(out + g * kBlock + j0 + 8, &acc[g][1], sizeof(Vec8));
    }
  }
}

#if defined(__GNUC__) && defined(__x86_64__)
__attribute__((target("avx2,fma"))) void dot_block_avx2(const float* q, int dims, const float* pt, float* out) {
  dot_block_body(q, dims, pt, out);
}
#endif
void dot_block_generic(const float* q, int dims, const float* pt, float* out) { dot_block_body(q, dims, pt, out); }

using DotBlock = void (*)(const float*, int, const float*, float*);
DotBlock select_dot_block() {
#if defined(__GNUC__) && defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return dot_block_avx2;
#endif
  return dot_block_generic;
}

using Candidate = std::pair<float, int>;  // (distance, index): lexicographic order breaks ties by index

}  // namespace

KnnGraph exact_knn(const float* data, int rows, int dims, int k, int threads) {
  if (k < 1 || k >= rows) {
    throw UsageError("k nearest neighbours: k must be in [1, " + std::to_string(rows - 1) + "], got " +
                     std::to_string(k));
  }
  threads = resolve_thread_count(threads);
  static const DotBlock dot_block = select_dot_block();
  const int blocks = (rows + kBlock - 1) / kBlock;
  std::vector<float> norms(rows);
  for (int i = 0; i < rows; ++i) {
    double s = 0;
    const float* x = data + static_cast<std::size_t>(i) * dims;
    for (int d = 0; d < dims; ++d) s += static_cast<double>(x[d]) * x[d];
    norms[i] = static_cast<float>(s);
  }
  // Database transposed per block, padded with zeros.
  std::vector<float> transposed(static_cast<std::size_t>(blocks) * dims * kBlock, 0.f);
  for (int i = 0; i < rows; ++i) {
    const int b = i / kBlock, j = i % kBlock;
    float* base = transposed.data() + static_cast<std::size_t>(b) * dims * kBlock;
    for (int d = 0; d < dims; ++d) base[static_cast<std::size_t>(d) * kBlock + j] = data[static_cast<std::size_t>(i) * dims + d];
  }

  KnnGraph graph;
  graph.rows = rows;
  graph.k = k;
  graph.indices.resize(static_cast<std::size_t>(rows) * k);
  graph.distances.resize(static_cast<std::size_t>(rows) * k);
  const int tiles = (rows + kQueryTile - 1) / kQueryTile;

  parallel_for(tiles, threads, [&](std::size_t tile_begin, std::size_t tile_end) {
    std::vector<float> queries(static_cast<std::size_t>(kQueryTile) * dims);
    std::vector<float> dots(static_cast<std::size_t>(kGroup) * kBlock);
    std::vector<std::vector<Candidate>> heaps(kQueryTile);
    for (std::size_t tile = tile_begin; tile < tile_end; ++tile) {
      const int q0 = static_cast<int>(tile) * kQueryTile;
      const int count = std::min(kQueryTile, rows - q0);
      std::fill(queries.begin(), queries.end(), 0.f);
      std::copy(data + static_cast<std::size_t>(q0) * dims, data + static_cast<std::size_t>(q0 + count) * dims,
                queries.begin());
      for (auto& h : heaps) {
        h.clear();
        h.reserve(k + 1);
      }
      for (int b = 0; b < blocks; ++b) {
        const float* pt = transposed.data() + static_cast<std::size_t>(b) * dims * kBlock;
        const int p0 = b * kBlock;
        const int pcount = std::min(kBlock, rows - p0);
        for (int g0 = 0; g0 < count; g0 += kGroup) {
          dot_block(queries.data() + static_cast<std::size_t>(g0) * dims, dims, pt, dots.data());
          for (int g = 0; g < kGroup && g0 + g < count; ++g) {
            const int qi = q0 + g0 + g;
            auto& heap = heaps[g0 + g];
            const float nq = norms[qi];
            float* dg = dots.data() + g * kBlock;
            for (int j = 0; j < pcount; ++j) dg[j] = nq + norms[p0 + j] - 2.f * dg[j];
            // Most candidates lose against the current k-th distance: one float compare each.
            float threshold = static_cast<int>(heap.size()) < k ? std::numeric_limits<float>::infinity()
                                                                : heap.front().first;
            for (int j = 0; j < pcount; ++j) {
              if (!(dg[j] <= threshold)) continue;
              const int pj = p0 + j;
              if (pj == qi) continue;
              const Candidate c{std::max(0.f, dg[j]), pj};
              if (static_cast<int>(heap.size()) < k) {
                heap.push_back(c);
                std::push_heap(heap.begin(), heap.end());
              } else if (c < heap.front()) {
                std::pop_heap(heap.begin(), heap.end());
                heap.back() = c;
                std::push_heap(heap.begin(), heap.end());
              }
              if (static_cast<int>(heap.size()) == k) threshold = heap.front().first;
            }
          }
        }
      }
      // Re-rank with exact distances (the expanded form loses digits for nearby points).
      for (int g = 0; g < count; ++g) {
        const int qi = q0 + g;
        auto& heap = heaps[g];
        const float* xq = data + static_cast<std::size_t>(qi) * dims;
        for (auto& c : heap) {
          const float* xp = data + static_cast<std::size_t>(c.second) * dims;
          double s = 0;
          for (int d = 0; d < dims; ++d) {
            const double diff = static_cast<double>(xq[d]) - xp[d];
            s += diff * diff;
          }
          c.first = static_cast<float>(s);
        }
        std::sort(heap.begin(), heap.end());
        for (int j = 0; j < k; ++j) {
          graph.indices[static_cast<std::size_t>(qi) * k + j] = heap[j].second;
          graph.distances[static_cast<std::size_t>(qi) * k + j] = heap[j].first;
        }
      }
    }
  });
  return graph;
}

}  // namespace cnnvis
