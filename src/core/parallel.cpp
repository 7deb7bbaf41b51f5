#include "cnnvis/core/parallel.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace cnnvis {

namespace {

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

// How long a waiting thread spins before it sleeps: long enough to cover the serial steps between
// t-SNE's parallel loops (tens of microseconds), short enough not to hold a core when idle.
constexpr std::chrono::microseconds kSpin(200);

// Spins until done() or kSpin has passed; true when done.
template <typename Done>
bool spin_until(Done&& done) {
  const auto deadline = std::chrono::steady_clock::now() + kSpin;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (done()) return true;
      cpu_relax();
    }
    if (std::chrono::steady_clock::now() > deadline) return done();
  }
}

}  // namespace

struct ThreadPool::State {
  std::mutex mutex;
  std::condition_variable start, finished;
  std::atomic<std::uint64_t> generation{0};
  std::atomic<int> pending{0};
  std::atomic<bool> stop{false};
  const std::function<void(int)>* job = nullptr;
  std::vector<std::exception_ptr> errors;
  std::vector<std::thread> threads;

  void work(int w) {
    std::uint64_t seen = 0;
    for (;;) {
      if (!spin_until([&] { return generation.load(std::memory_order_acquire) != seen; })) {
        std::unique_lock<std::mutex> lock(mutex);
        start.wait(lock, [&] { return stop || generation.load(std::memory_order_acquire) != seen; });
      }
      if (stop.load(std::memory_order_acquire)) return;
      seen = generation.load(std::memory_order_acquire);
      try {
        (*job)(w);
      } catch (...) {
        errors[w] = std::current_exception();
      }
      if (pending.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(mutex);
        finished.notify_one();
      }
    }
  }
};

ThreadPool::ThreadPool(int threads) : state_(std::make_unique<State>()), size_(std::max(1, threads)) {
  state_->errors.resize(size_);
  for (int w = 1; w < size_; ++w) state_->threads.emplace_back([this, w] { state_->work(w); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->stop.store(true, std::memory_order_release);
    state_->generation.fetch_add(1, std::memory_order_release);
  }
  state_->start.notify_all();
  for (auto& t : state_->threads) t.join();
}

void ThreadPool::run(const std::function<void(int)>& job) {
  State& s = *state_;
  busy_ = true;
  for (auto& e : s.errors) e = nullptr;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    s.job = &job;
    s.pending.store(size_ - 1, std::memory_order_relaxed);
    s.generation.fetch_add(1, std::memory_order_release);
  }
  s.start.notify_all();
  try {
    job(0);
  } catch (...) {
    s.errors[0] = std::current_exception();
  }
  const auto done = [&] { return s.pending.load(std::memory_order_acquire) == 0; };
  if (!spin_until(done)) {
    std::unique_lock<std::mutex> lock(s.mutex);
    s.finished.wait(lock, done);
  }
  busy_ = false;
  for (auto& e : s.errors) {
    if (e) std::rethrow_exception(e);
  }
}

ParallelScope::ParallelScope(int threads) : previous_(detail::current_pool()) {
  threads = resolve_thread_count(threads);
  if (threads > 1) {
    pool_ = std::make_unique<ThreadPool>(threads);
    detail::current_pool() = pool_.get();
  }
}

ParallelScope::~ParallelScope() { detail::current_pool() = previous_; }

namespace detail {
ThreadPool*& current_pool() {
  thread_local ThreadPool* pool = nullptr;
  return pool;
}
}  // namespace detail

}  // namespace cnnvis
