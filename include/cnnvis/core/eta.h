// Rate and time left of a long loop whose items need not cost the same: training steps run on crops
// that grow stage by stage, so a step late in the run costs up to four times an early one.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <utility>
#include <vector>

namespace cnnvis {

class EtaEstimator {
 public:
  // total items, of which already_done were finished before this run (they cost nothing now).
  // item_size(i): what item i's cost grows with (a step's pixels); empty: all items alike. The time of an
  // item is fitted as a + b * size over the sizes seen so far (least squares over the mean time per size);
  // while one size has been seen, as proportional to the size. The fit weighs the items left against each
  // other; the speed of the last 30 s of work scales it, so that a machine that slows down is followed.
  EtaEstimator(std::size_t total, std::size_t already_done = 0, const std::function<double(std::size_t)>& item_size = {});

  // `done` items are finished after `seconds` of work (a clock that leaves out pauses). Calls must not go
  // back in done or in seconds.
  void observe(std::size_t done, double seconds);

  // Items per second over about the last `window` seconds of work (the whole run while it is shorter);
  // 0 before a tenth of a second of work.
  double recent_rate(double window = 10.0) const;
  // Seconds of work left; negative while unknown (nothing timed yet).
  double seconds_left() const;

 private:
  std::pair<std::size_t, double> sample_before(double window) const;  // (done, seconds) of the window's start
  double size_of(std::size_t i) const { return sizes_prefix_.empty() ? 1.0 : sizes_prefix_[i + 1] - sizes_prefix_[i]; }
  double sizes_between(std::size_t begin, std::size_t end) const {
    return sizes_prefix_.empty() ? static_cast<double>(end - begin) : sizes_prefix_[end] - sizes_prefix_[begin];
  }

  std::size_t total_;
  std::size_t done_;
  double seconds_ = 0;
  std::vector<double> sizes_prefix_;                   // sizes_prefix_[i]: sum of the sizes of items < i
  std::map<double, std::pair<double, double>> times_;  // size -> (items timed, their seconds)
  std::deque<std::pair<std::size_t, double>> recent_;  // (done, seconds) samples, oldest first
};

}  // namespace cnnvis
