// libFuzzer target: IDX parsing, plain and gzipped (the first byte picks the path, so the corpus holds
// both). Property: InputError or an array whose size is the product of its dimensions.
#include <cstdint>

#include "cnnvis/core/errors.h"
#include "cnnvis/io/idx.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const cnnvis::IdxArray array = (size >= 2 && data[0] == 0x1f && data[1] == 0x8b)
                                       ? cnnvis::parse_idx_gzip(data, size, "fuzz.idx.gz")
                                       : cnnvis::parse_idx(data, size, "fuzz.idx");
    std::uint64_t count = 1;
    for (std::int64_t d : array.dims) count *= static_cast<std::uint64_t>(d);
    if (count != array.values.size()) __builtin_trap();
  } catch (const cnnvis::InputError&) {
  }
  return 0;
}
