// libFuzzer target: .npy parsing and conversion to float. Property: InputError or a consistent array.
#include <cstdint>

#include "cnnvis/core/errors.h"
#include "cnnvis/io/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const cnnvis::NpyArray array = cnnvis::parse_npy(data, size, "fuzz.npy");
    const std::vector<float> values = array.to_float();
    if (static_cast<std::int64_t>(values.size()) != array.numel()) __builtin_trap();
  } catch (const cnnvis::InputError&) {
  }
  return 0;
}
