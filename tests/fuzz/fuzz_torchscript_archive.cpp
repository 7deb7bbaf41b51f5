// libFuzzer target: the checks of a TorchScript zip made before torch::jit::load (its zip directory, the
// pickle records' opcodes and stack, the tensor records they reference and the views of them). Property:
// it returns or throws WeightsError; never crashes, reads out of bounds or allocates beyond what the input
// can hold.
#include <cstdint>

#include "cnnvis/core/errors.h"
#include "cnnvis/models/torchscript_archive.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    cnnvis::check_torchscript_archive(data, size, "fuzz.pt");
  } catch (const cnnvis::WeightsError&) {
  }
  return 0;
}
