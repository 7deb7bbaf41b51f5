// A minimal fork-join loop on std::thread for the torch-free numerics (t-SNE, PCA, kNN).
//
// Work is split into contiguous ranges; every output element must be written by exactly one range in a
// fixed order so that results do not depend on the number of threads.
#pragma once

#include <algorithm>
#include <cstddef>
#include <exception>
#include <thread>
#include <vector>

namespace cnnvis {

// 0 means "all hardware threads".
inline int resolve_thread_count(int requested) {
  if (requested > 0) return requested;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

// Calls body(begin, end) on disjoint ranges covering [0, n). The first exception thrown by any range is
// rethrown in the caller after all threads have joined.
template <typename Body>
void parallel_for(std::size_t n, int threads, Body&& body, std::size_t min_chunk = 1) {
  if (n == 0) return;
  std::size_t workers = static_cast<std::size_t>(std::max(1, threads));
  workers = std::min(workers, (n + min_chunk - 1) / std::max<std::size_t>(1, min_chunk));
  if (workers <= 1) {
    body(std::size_t{0}, n);
    return;
  }
  std::vector<std::thread> pool;
  std::vector<std::exception_ptr> errors(workers);
  const std::size_t step = (n + workers - 1) / workers;
  for (std::size_t w = 0; w < workers; ++w) {
    const std::size_t begin = w * step;
    const std::size_t end = std::min(n, begin + step);
    if (begin >= end) break;
    pool.emplace_back([&, w, begin, end] {
      try {
        body(begin, end);
      } catch (...) {
        errors[w] = std::current_exception();
      }
    });
  }
  for (auto& t : pool) t.join();
  for (auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

}  // namespace cnnvis
