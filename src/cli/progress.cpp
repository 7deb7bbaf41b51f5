#include "progress.h"

#include <unistd.h>

#include <cstdio>

#include <spdlog/spdlog.h>

#include "options.h"

namespace cnnvis::cli {

double elapsed_ms(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - since).count();
}

Progress::Progress(std::string what, std::size_t total, std::size_t already_done,
                   const std::function<double(std::size_t)>& item_size)
    : what_(std::move(what)), total_(total), done_(already_done),
      tty_(isatty(STDERR_FILENO) != 0), start_(std::chrono::steady_clock::now()), last_(start_),
      eta_(total, already_done, item_size) {}

namespace {
std::string duration_text(double seconds) {
  if (!(seconds >= 0) || seconds > 1e7) return "?";
  const long s = static_cast<long>(seconds + 0.5);
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return std::to_string(s / 60) + "m" + (s % 60 < 10 ? "0" : "") + std::to_string(s % 60) + "s";
  return std::to_string(s / 3600) + "h" + (s / 60 % 60 < 10 ? "0" : "") + std::to_string(s / 60 % 60) + "m";
}
}  // namespace

void Progress::update(std::size_t done) {
  if (done == done_ && done != total_) return;
  const bool finished_now = done == total_ && done_ != total_;
  done_ = done;
  if (global_options().quiet) return;
  const auto now = std::chrono::steady_clock::now();
  const double seconds = std::chrono::duration<double>(now - start_).count();
  // Resumed items cost nothing: the rate and the ETA count only the work done by this run. Under a tenth
  // of a second the rate is noise (the first update of a fast stage read 5e7/s).
  eta_.observe(done, seconds);
  const double rate = eta_.recent_rate();
  const double left = eta_.seconds_left();
  const std::string eta = left >= 0 && rate > 0 ? duration_text(left) : "?";
  const std::string failed = failed_ > 0 ? ", " + std::to_string(failed_) + " failed" : "";
  if (tty_) {
    const int width = 30;
    const int filled = total_ ? static_cast<int>(width * done / total_) : width;
    std::fprintf(stderr, "\r[%s%s] %zu/%zu %s%s  %.1f/s  ETA %s  elapsed %s ", std::string(filled, '#').c_str(),
                 std::string(width - filled, '.').c_str(), done, total_, what_.c_str(), failed.c_str(), rate, eta.c_str(),
                 duration_text(seconds).c_str());
    std::fflush(stderr);
  } else if (std::chrono::duration<double>(now - last_).count() >= 5.0 || finished_now) {
    spdlog::info("{}/{} {}{} ({:.1f}/s, ETA {}, elapsed {})", done, total_, what_, failed, rate, eta, duration_text(seconds));
    last_ = now;
  }
}

void Progress::pause() {
  if (paused_) return;
  paused_ = true;
  paused_at_ = std::chrono::steady_clock::now();
  finish();  // ends the terminal line; the next update starts a new one
}

void Progress::resume() {
  if (!paused_) return;
  paused_ = false;
  start_ += std::chrono::steady_clock::now() - paused_at_;
}

void Progress::finish() {
  if (tty_ && !global_options().quiet && done_ > 0) std::fprintf(stderr, "\n");
}

}  // namespace cnnvis::cli
