// libFuzzer target: the safetensors header parser and the dtype conversion of every tensor it accepts.
// Property: any byte string either parses into entries that lie inside the buffer, or throws WeightsError.
// Anything else (another exception, a sanitizer report) is a bug.
#include <cstdint>
#include <cstring>
#include <vector>

#include "cnnvis/core/errors.h"
#include "cnnvis/io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  cnnvis::SafetensorsLimits limits;
  limits.max_header_bytes = 1 << 20;
  try {
    const cnnvis::SafetensorsHeader header = cnnvis::parse_safetensors(data, size, "fuzz.safetensors", limits);
    std::vector<float> floats;
    for (const cnnvis::TensorEntry& entry : header.entries) {
      // The parser promised these bounds; ASan checks the promise when the bytes are read.
      if (header.data_offset + entry.end > size) __builtin_trap();
      if (entry.dtype == cnnvis::DType::I64) continue;
      floats.resize(static_cast<std::size_t>(entry.numel()));
      cnnvis::convert_to_f32(entry, data + header.data_offset + entry.begin, floats.data());
    }
  } catch (const cnnvis::WeightsError&) {
  }
  return 0;
}
