// NumPy .npy files (format 1.0): raw float maps written exactly, for regression and for Python users.
#pragma once

#include <cstdint>
#include <cstdio>
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

// Streams rows of a 2-D (or higher) array to an .npy file whose first axis grows: the header is written
// with a row count of 0 and rewritten in place by finish() (numpy's header keeps room for the first
// axis to grow, so its length never changes). The data goes to path + ".tmp", renamed at finish(), so an
// interrupted run never leaves an .npy that claims rows it does not hold. descr: "<f4" or "<i8".
class NpyRowWriter {
 public:
  NpyRowWriter(std::string path, std::string descr, std::vector<std::int64_t> row_shape);
  ~NpyRowWriter();  // removes the temporary file when finish() was not reached
  NpyRowWriter(const NpyRowWriter&) = delete;
  NpyRowWriter& operator=(const NpyRowWriter&) = delete;

  void append_f32(const float* rows_data, std::int64_t rows);  // descr "<f4" only
  void append_i64(const std::int64_t* rows_data, std::int64_t rows);  // descr "<i8" only
  std::int64_t rows() const { return rows_; }
  void finish();  // throws OutputError

 private:
  void append_bytes(const void* data, std::size_t bytes, std::int64_t rows);
  std::string path_, tmp_, descr_;
  std::vector<std::int64_t> row_shape_;
  std::int64_t row_items_ = 1;
  std::int64_t rows_ = 0;
  std::FILE* file_ = nullptr;
};

// Reads and validates (magic, version 1/2/3, header dict, fortran_order false, size matches).
// Throws InputError naming the path and the problem.
NpyArray read_npy(const std::string& path);
NpyArray parse_npy(const std::uint8_t* data, std::size_t size, const std::string& name);

}  // namespace cnnvis
