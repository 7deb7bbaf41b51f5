// Typed exceptions thrown by the library. Only the CLI's main turns them into messages and exit codes.
#pragma once

#include <stdexcept>
#include <string>

namespace cnnvis {

// Base of every error the library throws on purpose. what() is one line, meant for the user.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// The user asked for something that cannot be done as asked (unknown layer, target out of range,
// bad option value). The CLI maps it to exit code 2.
class UsageError : public Error {
 public:
  using Error::Error;
};

// An input file (image, data set) is missing, unreadable or malformed. Batch commands record it per
// input and go on with the rest.
class InputError : public Error {
 public:
  using Error::Error;
};

// A weights file is missing, malformed, or does not match the model.
class WeightsError : public Error {
 public:
  using Error::Error;
};

// A model card (JSON) is missing fields or inconsistent.
class ModelCardError : public Error {
 public:
  using Error::Error;
};

// Writing an output failed (unwritable directory, disk full).
class OutputError : public Error {
 public:
  using Error::Error;
};

// The compute device is unavailable or ran out of memory.
class DeviceError : public Error {
 public:
  using Error::Error;
};

// The compute device (CUDA, or host memory for CPU tensors) could not allocate what one batch needs.
// Batch runners catch it and retry with smaller batches (core/batch_retry.h).
class OutOfMemoryError : public DeviceError {
 public:
  using DeviceError::DeviceError;
};

}  // namespace cnnvis
