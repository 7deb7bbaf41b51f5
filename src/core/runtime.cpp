#include "cnnvis/core/runtime.h"

#include <atomic>
#include <new>
#include <regex>
#include <thread>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <spdlog/spdlog.h>
#include <torch/version.h>

#include "cnnvis/core/errors.h"

namespace cnnvis {

namespace {
std::atomic<bool> g_per_image_onednn{true};
}

bool per_image_onednn() { return g_per_image_onednn.load(); }
void set_per_image_onednn(bool enabled) { g_per_image_onednn.store(enabled); }

ScopedBatchInvariantKernels::ScopedBatchInvariantKernels(bool batch_invariant)
    : previous_(!at::globalContext().userEnabledMkldnn()) {
  at::globalContext().setUserEnabledMkldnn(!batch_invariant);
}

ScopedBatchInvariantKernels::~ScopedBatchInvariantKernels() { at::globalContext().setUserEnabledMkldnn(!previous_); }

bool cpu_has_native_bf16() {
#if defined(__GNUC__) && defined(__x86_64__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512bf16");
#else
  return false;
#endif
}

// LibTorch 2.4 renamed the CPU autocast switches (the old names remain, deprecated).
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define CNNVIS_AUTOCAST_BY_DEVICE 1
#endif

ScopedCpuBf16Autocast::ScopedCpuBf16Autocast(bool enabled) : enabled_(enabled) {
#ifdef CNNVIS_AUTOCAST_BY_DEVICE
  previous_enabled_ = at::autocast::is_autocast_enabled(at::kCPU);
  previous_dtype_ = static_cast<int>(at::autocast::get_autocast_dtype(at::kCPU));
  at::autocast::set_autocast_dtype(at::kCPU, at::kBFloat16);
  at::autocast::set_autocast_enabled(at::kCPU, enabled);
#else
  previous_enabled_ = at::autocast::is_cpu_enabled();
  previous_dtype_ = static_cast<int>(at::autocast::get_autocast_cpu_dtype());
  at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
  at::autocast::set_cpu_enabled(enabled);
#endif
}

ScopedCpuBf16Autocast::~ScopedCpuBf16Autocast() {
  const auto dtype = static_cast<at::ScalarType>(previous_dtype_);
#ifdef CNNVIS_AUTOCAST_BY_DEVICE
  at::autocast::set_autocast_enabled(at::kCPU, previous_enabled_);
  at::autocast::set_autocast_dtype(at::kCPU, dtype);
#else
  at::autocast::set_cpu_enabled(previous_enabled_);
  at::autocast::set_autocast_cpu_dtype(dtype);
#endif
  // Autocast keeps the bf16 copies of the weights it made until told otherwise; they are stale once
  // the optimiser has stepped. (Only an enabled scope makes copies.)
  if (enabled_) at::autocast::clear_cache();
}

std::string libtorch_version() { return TORCH_VERSION; }

void translate_out_of_memory(const std::function<void()>& work) {
  try {
    work();
  } catch (const c10::OutOfMemoryError& e) {
    std::string message = e.what();
    if (auto nl = message.find('\n'); nl != std::string::npos) message.resize(nl);
    throw OutOfMemoryError(message);
  } catch (const c10::Error& e) {
    // LibTorch's CPU allocator reports failure as a plain c10::Error ("DefaultCPUAllocator: can't
    // allocate memory" in 1.13, "not enough memory" in 2.x).
    std::string message = e.what();
    if (auto nl = message.find('\n'); nl != std::string::npos) message.resize(nl);
    if (message.find("DefaultCPUAllocator") != std::string::npos) throw OutOfMemoryError(message);
    throw;
  } catch (const std::bad_alloc&) {
    throw OutOfMemoryError("out of memory (allocation failed)");
  }
}

void seed_everything(unsigned long long seed) {
  at::manual_seed(seed);  // seeds CPU and, when present, every CUDA generator
}

RuntimeInfo configure_runtime(const RuntimeOptions& options) {
  RuntimeInfo info;
  info.libtorch_version = libtorch_version();
  info.cuda_available = at::hasCUDA();
  info.cuda_device_count = info.cuda_available ? static_cast<int>(at::detail::getCUDAHooks().getNumGPUs()) : 0;

  int threads = options.threads;
  if (threads < 0) throw UsageError("--threads must be >= 0 (0 = all cores), got " + std::to_string(threads));
  if (threads == 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (at::get_num_threads() != threads) at::set_num_threads(threads);
  info.threads = at::get_num_threads();

  static const std::regex pattern("^(auto|cpu|cuda)(:([0-9]+))?$");
  std::smatch match;
  if (!std::regex_match(options.device, match, pattern) || (match[1] != "cuda" && match[2].matched)) {
    throw UsageError("unknown device '" + options.device + "' (use auto, cpu, cuda or cuda:N)");
  }
  const std::string kind = match[1];
  if (kind == "cpu" || (kind == "auto" && info.cuda_device_count == 0)) {
    info.device = "cpu";
  } else {
    const int index = match[3].matched ? std::stoi(match[3]) : 0;
    if (info.cuda_device_count == 0) {
      throw DeviceError("device '" + options.device + "' asked for, but this LibTorch build sees no CUDA device");
    }
    if (index >= info.cuda_device_count) {
      throw DeviceError("device '" + options.device + "' asked for, but only " + std::to_string(info.cuda_device_count) +
                        " CUDA device(s) exist");
    }
    info.device = "cuda:" + std::to_string(index);
  }
  // oneDNN picks its convolution kernels by batch size, so an image's maps would depend on which
  // other images share its batch; the native kernels compute each image on its own.
  at::globalContext().setUserEnabledMkldnn(!options.deterministic);
  at::globalContext().setDeterministicCuDNN(options.deterministic);
  if (options.deterministic) at::globalContext().setBenchmarkCuDNN(false);
  info.deterministic = options.deterministic;
  set_per_image_onednn(options.per_image_onednn);
  info.cpu_convolutions = !options.deterministic                       ? "onednn"
                          : options.per_image_onednn && at::hasMKLDNN() ? "onednn-per-image"
                                                                        : "native";
  spdlog::debug("runtime: device {}, {} threads, LibTorch {}", info.device, info.threads, info.libtorch_version);
  return info;
}

}  // namespace cnnvis
