// Progress on stderr and wall-clock timing. CLI layer only: no LibTorch here.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>

#include "cnnvis/core/eta.h"

namespace cnnvis::cli {

// Progress on stderr: a bar when stderr is a terminal, periodic log lines otherwise; silent with --quiet.
// already_done counts work finished before this run (resumed inputs): it shows in the count but not in
// the rate or the ETA. Failed items are shown when there are any. The rate is that of the last ten
// seconds; the ETA weighs the items left by item_size (see EtaEstimator) when given.
class Progress {
 public:
  Progress(std::string what, std::size_t total, std::size_t already_done = 0,
           const std::function<double(std::size_t)>& item_size = {});
  void update(std::size_t done);
  void add_failed(std::size_t n) { failed_ += n; }
  void finish();
  // Time between pause() and resume() (another stage running) counts neither in the rate nor as elapsed.
  void pause();
  void resume();

 private:
  std::string what_;
  std::size_t total_;
  std::size_t failed_ = 0;
  std::size_t done_ = 0;
  bool tty_;
  std::chrono::steady_clock::time_point start_, last_, paused_at_;
  bool paused_ = false;
  EtaEstimator eta_;
};

double elapsed_ms(std::chrono::steady_clock::time_point since);

}  // namespace cnnvis::cli
