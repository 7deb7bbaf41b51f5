// Splitting a batch that does not fit in device memory. Torch-free: the compute step reports running
// out of memory by throwing cnnvis::OutOfMemoryError (see translate_out_of_memory in runtime.h).
#pragma once

#include <cstddef>
#include <functional>
#include <string>

namespace cnnvis {

// Processes items [0, count) in consecutive chunks of at most max_chunk items by calling
// process(first, last). When a chunk throws OutOfMemoryError it is split in halves (rounded up) and
// each half is processed the same way, down to single items; on_retry(failed_size, new_size, message)
// is called before every split so the caller can say so and discard partial results of the chunk. An
// OutOfMemoryError on a single item propagates. Every item is processed successfully exactly once
// unless an exception propagates. Returns the chunk size that worked (max_chunk when nothing failed, else
// the smallest size the splitting needed), which callers pass as max_chunk for the next batch so that
// the memory limit is not rediscovered on every batch.
std::size_t run_with_batch_halving(
    std::size_t count, std::size_t max_chunk, const std::function<void(std::size_t first, std::size_t last)>& process,
    const std::function<void(std::size_t failed_size, std::size_t new_size, const std::string& message)>& on_retry);

}  // namespace cnnvis
