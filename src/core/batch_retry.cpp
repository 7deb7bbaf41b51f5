#include "cnnvis/core/batch_retry.h"

#include <algorithm>

#include "cnnvis/core/errors.h"

namespace cnnvis {

namespace {

// Returns the largest chunk size that succeeded within [first, last).
std::size_t run_range(std::size_t first, std::size_t last, std::size_t chunk,
                      const std::function<void(std::size_t, std::size_t)>& process,
                      const std::function<void(std::size_t, std::size_t, const std::string&)>& on_retry) {
  std::size_t worked = chunk;
  for (std::size_t begin = first; begin < last;) {
    const std::size_t end = std::min(last, begin + worked);
    const std::size_t size = end - begin;
    try {
      process(begin, end);
    } catch (const OutOfMemoryError& e) {
      if (size <= 1) throw;
      const std::size_t half = (size + 1) / 2;
      on_retry(size, half, e.what());
      worked = std::min(worked, run_range(begin, end, half, process, on_retry));
    }
    begin = end;
  }
  return worked;
}

}  // namespace

std::size_t run_with_batch_halving(
    std::size_t count, std::size_t max_chunk, const std::function<void(std::size_t, std::size_t)>& process,
    const std::function<void(std::size_t, std::size_t, const std::string&)>& on_retry) {
  if (count == 0) return std::max<std::size_t>(max_chunk, 1);
  return run_range(0, count, std::max<std::size_t>(max_chunk, 1), process, on_retry);
}

}  // namespace cnnvis
