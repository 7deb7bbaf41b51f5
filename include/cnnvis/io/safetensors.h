// A validating reader (and a small writer) for the .safetensors weights format:
//   8-byte little-endian header length N | N bytes of JSON | raw tensor data.
// The JSON maps tensor names to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to
// the start of the data section) plus an optional "__metadata__" object of string values.
// Nothing here needs LibTorch, so the parser can be fuzzed and tested on its own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace cnnvis {

enum class DType { F32, F16, BF16, I64 };

const char* dtype_name(DType dtype);  // "F32", ...
std::size_t dtype_size(DType dtype);  // bytes per element

struct TensorEntry {
  std::string name;
  DType dtype = DType::F32;
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0;  // byte offsets into the data section, end exclusive
  std::uint64_t end = 0;
  std::int64_t numel() const;
};

struct SafetensorsLimits {
  std::uint64_t max_header_bytes = 100ull << 20;  // the format's own reference reader uses 100 MB
  std::uint64_t max_file_bytes = 16ull << 30;
  std::size_t max_tensors = 100000;
  std::size_t max_rank = 8;
};

struct SafetensorsHeader {
  std::vector<TensorEntry> entries;  // sorted by begin offset
  std::map<std::string, std::string> metadata;
  std::uint64_t data_offset = 0;  // 8 + N: where the data section starts in the file
};

// Parses and validates a whole file image held in memory. Checks: header length within the limits and
// the buffer, valid JSON object, known dtypes only (F32/F16/BF16/I64; anything else is named),
// integer non-negative shapes, shape x dtype size == end - begin, offsets inside the data section,
// no two tensors overlapping, metadata values strings. Throws WeightsError whose message starts with
// `name` (a file name for the user) and says what is wrong.
SafetensorsHeader parse_safetensors(const std::uint8_t* data, std::size_t size, const std::string& name,
                                    const SafetensorsLimits& limits = {});

// A read-only memory map of a safetensors file, validated on open. Move-only.
class SafetensorsFile {
 public:
  static SafetensorsFile open(const std::string& path, const SafetensorsLimits& limits = {});
  SafetensorsFile(SafetensorsFile&& other) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&& other) noexcept;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;
  ~SafetensorsFile();

  const std::string& path() const { return path_; }
  const std::vector<TensorEntry>& entries() const { return header_.entries; }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
  const TensorEntry* find(const std::string& name) const;  // nullptr when absent
  const std::uint8_t* data(const TensorEntry& entry) const;  // points into the mapping
  std::uint64_t file_size() const { return size_; }

 private:
  SafetensorsFile() = default;
  std::string path_;
  const std::uint8_t* mapping_ = nullptr;
  std::uint64_t size_ = 0;
  SafetensorsHeader header_;
};

// Converts one tensor's raw little-endian data (F32, F16 or BF16) to float32 into dst (numel floats).
// Throws WeightsError for I64.
void convert_to_f32(const TensorEntry& entry, const std::uint8_t* src, float* dst);

struct TensorToWrite {
  std::string name;
  DType dtype = DType::F32;
  std::vector<std::int64_t> shape;
  const void* data = nullptr;  // numel * dtype_size bytes, little-endian
};

// Writes a safetensors file (entries in the given order, 8-byte aligned header). Throws OutputError.
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace cnnvis
