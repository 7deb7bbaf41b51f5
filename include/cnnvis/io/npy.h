// NumPy .npy files (format 1.0): raw float maps written exactly, for regression and for Python users.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

namespace cnnvis {

struct NpyArray {
  std::string dtype;  // numpy descr: "<f4", "<f8", "<i8", "|u1", ...
  std::vector<std::int64_t> shape;
  std::vector<std::uint8_t> bytes;  // C order, little-endian as written in the file
  std::int64_t numel() const;
  std::vector<float> to_float() const;  // for <f4, <f8, <i8, <i4, |u1; throws InputError otherwise
};

// Writes float32 data of the given shape (C order). Throws OutputError naming the path.
void write_npy(const std::string& path, const float* data, const std::vector<std::int64_t>& shape);
// CV_32F Mat: 1 channel -> (rows, cols); n channels -> (rows, cols, n). Other depths: UsageError.
void write_npy(const std::string& path, const cv::Mat& map);
void write_npy_int64(const std::string& path, const std::int64_t* data, const std::vector<std::int64_t>& shape);

// Reads and validates (magic, version 1/2/3, header dict, fortran_order false, size matches).
// Throws InputError naming the path and the problem.
NpyArray read_npy(const std::string& path);
NpyArray parse_npy(const std::uint8_t* data, std::size_t size, const std::string& name);

}  // namespace cnnvis
