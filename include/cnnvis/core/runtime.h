// Process-wide compute settings: device choice and thread count. Torch-free interface.
#pragma once

#include <functional>
#include <string>

namespace cnnvis {

struct RuntimeOptions {
  std::string device = "auto";  // auto | cpu | cuda | cuda:N
  int threads = 0;              // 0: all hardware threads (LibTorch would otherwise use 1 here)
  // Batch-invariant, reproducible kernels: on CPU oneDNN is off for whole batches, whose result for one
  // image changes in the last bits with the number of images in the batch (the native networks'
  // convolutions then run on oneDNN one image per call, see per_image_onednn); on CUDA cuDNN keeps to
  // deterministic algorithms. Measured costs: docs/batch.md, "Determinism".
  bool deterministic = false;
  // With deterministic on CPU: the native networks' convolutions run on oneDNN one image per call, which
  // is batch-invariant too and about twice as fast as the native kernels (false: native kernels).
  bool per_image_onednn = true;
};

struct RuntimeInfo {
  std::string device;  // resolved: "cpu" or "cuda:N"
  int threads = 1;
  std::string libtorch_version;
  bool cuda_available = false;
  int cuda_device_count = 0;
  bool deterministic = false;
  // How CPU convolutions run: "onednn" (batched, fastest, not batch-invariant), "onednn-per-image" or
  // "native" (both batch-invariant; they differ from each other in the last bits).
  std::string cpu_convolutions;
};

// Whether the native networks' convolutions may run image by image on oneDNN while batch-invariant
// kernels are asked for (process-wide; configure_runtime sets it from RuntimeOptions::per_image_onednn).
bool per_image_onednn();
void set_per_image_onednn(bool enabled);

// Sets LibTorch's intra-op thread count and resolves the device. Throws UsageError for a malformed
// device string and DeviceError when CUDA is asked for but unavailable.
RuntimeInfo configure_runtime(const RuntimeOptions& options);

std::string libtorch_version();

// For one scope, CPU convolutions run on the batch-invariant native kernels (true) or on oneDNN (false);
// the previous setting comes back on every exit path. For stages whose batches are fixed by their
// inputs (atlas icons, the demo's feature visualisations), where batch invariance buys nothing and
// oneDNN is faster.
class ScopedBatchInvariantKernels {
 public:
  explicit ScopedBatchInvariantKernels(bool batch_invariant);
  ~ScopedBatchInvariantKernels();
  ScopedBatchInvariantKernels(const ScopedBatchInvariantKernels&) = delete;
  ScopedBatchInvariantKernels& operator=(const ScopedBatchInvariantKernels&) = delete;

 private:
  bool previous_;
};

// True when the CPU computes bfloat16 dot products natively (AVX512-BF16), where oneDNN's bf16
// convolutions run about twice as fast as fp32 ones; elsewhere bf16 is emulated and slower.
bool cpu_has_native_bf16();

// For one scope, CPU operations run under LibTorch's autocast in bfloat16: convolutions and matrix
// products take bf16 copies of their inputs and weights (the weights themselves stay fp32), other
// operations follow. The previous autocast state comes back on every exit path.
class ScopedCpuBf16Autocast {
 public:
  explicit ScopedCpuBf16Autocast(bool enabled);
  ~ScopedCpuBf16Autocast();
  ScopedCpuBf16Autocast(const ScopedCpuBf16Autocast&) = delete;
  ScopedCpuBf16Autocast& operator=(const ScopedCpuBf16Autocast&) = delete;

 private:
  bool enabled_;
  bool previous_enabled_;
  int previous_dtype_;  // c10::ScalarType, kept as int to keep c10 out of this header
};

// Runs work and turns LibTorch's out-of-memory failures (CUDA OOM, the CPU allocator giving up) and
// std::bad_alloc into cnnvis::OutOfMemoryError, so that torch-free callers can retry with smaller
// batches. Other exceptions pass through unchanged.
void translate_out_of_memory(const std::function<void()>& work);

// Seeds LibTorch's CPU and CUDA generators.
void seed_everything(unsigned long long seed);

}  // namespace cnnvis
