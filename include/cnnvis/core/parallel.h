// A minimal fork-join loop on std::thread for the torch-free numerics (t-SNE, PCA, kNN).
//
// Work is split into contiguous ranges; every output element must be written by exactly one range in a
// fixed order so that results do not depend on the number of threads.
#pragma once

#include <algorithm>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

namespace cnnvis {

// 0 means "all hardware threads".
inline int resolve_thread_count(int requested) {
  if (requested > 0) return requested;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

// A fixed set of threads for many short loops: t-SNE runs about ten parallel loops per iteration, some
// of them shorter than it takes to start a thread. Workers wait for work spinning for a moment, then
// sleep.
class ThreadPool {
 public:
  explicit ThreadPool(int threads);  // threads - 1 workers; the caller is the last
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  int size() const { return size_; }
  bool busy() const { return busy_; }
  // Calls job(w) for every w in [0, size()) at once, w = 0 on the calling thread; returns when all have
  // returned, rethrowing the first exception (by w). Not re-entrant: a job must not call run.
  void run(const std::function<void(int)>& job);

 private:
  struct State;
  std::unique_ptr<State> state_;
  int size_ = 1;
  bool busy_ = false;
};

// While alive, parallel_for calls made on this thread run on a pool of `threads` threads instead of
// starting threads of their own (nested calls still start their own).
class ParallelScope {
 public:
  explicit ParallelScope(int threads);
  ~ParallelScope();
  ParallelScope(const ParallelScope&) = delete;
  ParallelScope& operator=(const ParallelScope&) = delete;

 private:
  std::unique_ptr<ThreadPool> pool_;
  ThreadPool* previous_ = nullptr;
};

namespace detail {
ThreadPool*& current_pool();  // this thread's scope's pool, or null
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
  const std::size_t step = (n + workers - 1) / workers;
  // Range w of the split; the same split whether the pool or fresh threads run it.
  const auto run_range = [&](std::size_t w) {
    const std::size_t begin = w * step;
    const std::size_t end = std::min(n, begin + step);
    if (begin < end) body(begin, end);
  };
  ThreadPool* pool = detail::current_pool();
  if (pool && !pool->busy() && static_cast<std::size_t>(pool->size()) >= workers) {
    pool->run([&](int w) { run_range(static_cast<std::size_t>(w)); });
    return;
  }
  std::vector<std::thread> pool_threads;
  std::vector<std::exception_ptr> errors(workers);
  for (std::size_t w = 0; w < workers && w * step < n; ++w) {
    pool_threads.emplace_back([&, w] {
      try {
        run_range(w);
      } catch (...) {
        errors[w] = std::current_exception();
      }
    });
  }
  for (auto& t : pool_threads) t.join();
  for (auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

}  // namespace cnnvis
