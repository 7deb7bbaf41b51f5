#include "cnnvis/core/eta.h"

#include <algorithm>

namespace cnnvis {

namespace {
constexpr double kSpeedWindow = 30.0;  // seconds of work that set the machine's current speed for the ETA
}  // namespace

EtaEstimator::EtaEstimator(std::size_t total, std::size_t already_done, const std::function<double(std::size_t)>& item_size)
    : total_(total), done_(std::min(already_done, total)) {
  if (item_size) {
    sizes_prefix_.resize(total + 1, 0.0);
    for (std::size_t i = 0; i < total; ++i) sizes_prefix_[i + 1] = sizes_prefix_[i] + std::max(0.0, item_size(i));
  }
  recent_.emplace_back(done_, 0.0);
}

void EtaEstimator::observe(std::size_t done, double seconds) {
  done = std::min(done, total_);
  // Out of order, or no item finished: the time counts with the interval that finishes the next item.
  if (done <= done_ || seconds < seconds_) return;
  const double spent = seconds - seconds_;
  // The interval's time is shared among its items in proportion to their sizes (updates usually come
  // one item at a time, so this rarely has to guess).
  const double sizes = sizes_between(done_, done);
  for (std::size_t i = done_; i < done; ++i) {
    auto& [items, time] = times_[size_of(i)];
    items += 1;
    time += sizes > 0 ? spent * size_of(i) / sizes : spent / static_cast<double>(done - done_);
  }
  done_ = done;
  seconds_ = seconds;
  recent_.emplace_back(done, seconds);
  // Keep one sample older than the longest window asked for in practice (a minute), and not too many.
  while (recent_.size() > 2 && (seconds - recent_[1].second > 60.0 || recent_.size() > 4096)) recent_.pop_front();
}

std::pair<std::size_t, double> EtaEstimator::sample_before(double window) const {
  // The newest sample at least `window` seconds old, else the oldest kept.
  auto from = recent_.front();
  for (const auto& sample : recent_) {
    if (seconds_ - sample.second < window) break;
    from = sample;
  }
  return from;
}

double EtaEstimator::recent_rate(double window) const {
  if (seconds_ < 0.1 || recent_.empty()) return 0;
  const auto from = sample_before(window);
  const double span = seconds_ - from.second;
  return span > 0 ? static_cast<double>(done_ - from.first) / span : 0;
}

double EtaEstimator::seconds_left() const {
  if (done_ >= total_) return 0;
  if (times_.empty()) return -1;
  // Weighted least squares of time per item t = a + b * s over the sizes seen (weight: items timed).
  double n = 0, sum_s = 0, sum_t = 0, sum_ss = 0, sum_st = 0;
  for (const auto& [size, entry] : times_) {
    const double items = entry.first, mean = entry.second / entry.first;
    n += items;
    sum_s += items * size;
    sum_t += items * mean;
    sum_ss += items * size * size;
    sum_st += items * size * mean;
  }
  double a = 0, b = 0;
  const double spread = n * sum_ss - sum_s * sum_s;  // n^2 times the variance of the sizes seen
  if (times_.size() >= 2 && spread > 1e-12 * n * sum_ss) {
    b = (n * sum_st - sum_s * sum_t) / spread;
    a = (sum_t - b * sum_s) / n;
  }
  if (times_.size() < 2 || !(spread > 1e-12 * n * sum_ss) || a < 0 || b < 0) {
    // One size seen, or a fit that says a bigger item is cheaper or an item costs less than nothing:
    // time in proportion to size (all items alike: the average rate).
    a = 0;
    b = sum_s > 0 ? sum_t / sum_s : 0;
    if (sum_s <= 0) a = sum_t / n;
  }
  // The fit says what the items left cost relative to each other; the last half minute says how fast
  // this machine goes now (another process may have taken a core since the start).
  const auto from = sample_before(kSpeedWindow);
  const double fitted = a * static_cast<double>(done_ - from.first) + b * sizes_between(from.first, done_);
  const double elapsed = seconds_ - from.second;
  const double speed = fitted > 0 && elapsed > 0 ? elapsed / fitted : 1.0;
  return speed * (a * static_cast<double>(total_ - done_) + b * sizes_between(done_, total_));
}

}  // namespace cnnvis
