// LibTorch's out-of-memory failures become cnnvis::OutOfMemoryError (which batch runners retry with
// smaller batches); other LibTorch errors pass through unchanged.
#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <gtest/gtest.h>

#include <new>
#include <string>

#include "cnnvis/core/errors.h"
#include "cnnvis/core/runtime.h"

namespace cnnvis {
namespace {

TEST(OutOfMemory, CudaOutOfMemoryErrorIsTranslated) {
  try {
    translate_out_of_memory([] { TORCH_CHECK_WITH(OutOfMemoryError, false, "CUDA out of memory. Tried to allocate 2.00 GiB"); });
    FAIL() << "expected OutOfMemoryError";
  } catch (const cnnvis::OutOfMemoryError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("CUDA out of memory"), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << "one line: " << message;
  }
}

TEST(OutOfMemory, CpuAllocatorFailureIsTranslated) {
  // 2^46 floats = 256 TiB: no machine has it, so the CPU allocator refuses.
  EXPECT_THROW(translate_out_of_memory([] { (void)at::empty({std::int64_t{1} << 46}, at::kFloat); }),
               cnnvis::OutOfMemoryError);
}

TEST(OutOfMemory, BadAllocIsTranslated) {
  EXPECT_THROW(translate_out_of_memory([] { throw std::bad_alloc(); }), cnnvis::OutOfMemoryError);
}

TEST(OutOfMemory, OtherErrorsPassThrough) {
  EXPECT_THROW(translate_out_of_memory([] { (void)at::ones({2, 3}).matmul(at::ones({2, 3})); }), c10::Error);
  EXPECT_THROW(translate_out_of_memory([] { throw InputError("a.png: corrupt"); }), InputError);
}

}  // namespace
}  // namespace cnnvis
