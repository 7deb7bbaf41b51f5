// NumPy .npy files. The writer produces the same bytes as numpy.save for the same array; the reader
// parses the header dict with a tiny literal parser (the format's header is a Python literal, which
// must never be evaluated).
#include "cnnvis/io/npy.h"

#include <sys/stat.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>

#include "cnnvis/core/errors.h"

namespace cnnvis {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicLen = 6;
constexpr std::size_t kAlign = 64;
// numpy leaves room for the first axis to grow to this many digits when rewriting a header in place.
constexpr std::size_t kGrowthAxisMaxDigits = 21;

bool host_is_little_endian() {
  const std::uint16_t probe = 1;
  std::uint8_t first = 0;
  std::memcpy(&first, &probe, 1);
  return first == 1;
}

// The header exactly as numpy 1.2x writes it for version 1.0 (dict keys sorted, repr of a tuple, spare
// spaces for the growth axis, padding to 64 bytes, final newline).
std::string npy_header(const std::string& descr, const std::vector<std::int64_t>& shape) {
  std::string shape_repr = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) shape_repr += ", ";
    shape_repr += std::to_string(shape[i]);
  }
  if (shape.size() == 1) shape_repr += ",";
  shape_repr += ")";
  std::string dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape_repr + ", }";
  if (!shape.empty()) {
    const std::size_t digits = std::to_string(shape[0]).size();
    if (digits < kGrowthAxisMaxDigits) dict.append(kGrowthAxisMaxDigits - digits, ' ');
  }
  const std::size_t hlen = dict.size() + 1;  // + '\n'
  const std::size_t padlen = kAlign - ((kMagicLen + 2 + 2 + hlen) % kAlign);
  dict.append(padlen, ' ');
  dict.push_back('\n');

  std::string out(kMagic, kMagicLen);
  out.push_back('\x01');
  out.push_back('\x00');
  const std::size_t total = dict.size();  // < 65536 for any shape of up to a few thousand dimensions
  out.push_back(static_cast<char>(total & 0xff));
  out.push_back(static_cast<char>((total >> 8) & 0xff));
  out += dict;
  return out;
}

void write_file(const std::string& path, const std::string& header, const void* data, std::size_t bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) throw OutputError(path + ": cannot write (" + std::strerror(errno) + ")");
  bool ok = std::fwrite(header.data(), 1, header.size(), f) == header.size();
  if (ok && bytes > 0) ok = std::fwrite(data, 1, bytes, f) == bytes;
  int err = ok ? 0 : errno;
  if (std::fclose(f) != 0 && ok) {
    ok = false;
    err = errno;
  }
  if (!ok) {
    std::remove(path.c_str());  // a partial .npy would only fail later with a less clear message
    throw OutputError(path + ": cannot write (" + std::strerror(err) + ")");
  }
}

std::uint64_t checked_numel(const std::vector<std::int64_t>& shape, const std::string& path) {
  std::uint64_t n = 1;
  for (std::int64_t d : shape) {
    if (d < 0) throw UsageError(path + ": negative dimension in array shape");
    if (d != 0 && n > std::numeric_limits<std::uint64_t>::max() / 8 / static_cast<std::uint64_t>(d)) {
      throw UsageError(path + ": array shape is too large");
    }
    n *= static_cast<std::uint64_t>(d);
  }
  return n;
}

// ---- reading -------------------------------------------------------------------------------------

// A Python literal as it can appear in an .npy header.
struct PyValue {
  enum Kind { kString, kInt, kBool, kNone, kTuple } kind = kNone;
  std::string text;
  std::int64_t integer = 0;
  bool boolean = false;
  std::vector<PyValue> items;
};

class HeaderParser {
 public:
  HeaderParser(const std::string& text, const std::string& name) : s_(text), name_(name) {}

  std::vector<std::pair<std::string, PyValue>> parse_dict() {
    std::vector<std::pair<std::string, PyValue>> out;
    skip_space();
    expect('{');
    for (;;) {
      skip_space();
      if (peek() == '}') {
        ++pos_;
        break;
      }
      PyValue key = parse_value(0);
      if (key.kind != PyValue::kString) fail("header dict keys must be strings");
      skip_space();
      expect(':');
      PyValue value = parse_value(0);
      out.emplace_back(key.text, std::move(value));
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      skip_space();
      expect('}');
      break;
    }
    skip_space();
    if (pos_ != s_.size()) fail("unexpected text after the header dict");
    return out;
  }

 private:
  [[noreturn]] void fail(const std::string& problem) const {
    throw InputError(name_ + ": invalid .npy header (" + problem + ")");
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void skip_space() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "' at offset " + std::to_string(pos_));
    ++pos_;
  }

  PyValue parse_value(int depth) {
    if (depth > 4) fail("nesting too deep");
    skip_space();
    const char c = peek();
    PyValue v;
    if (c == '\'' || c == '"') {
      ++pos_;
      v.kind = PyValue::kString;
      while (pos_ < s_.size() && s_[pos_] != c) {
        if (s_[pos_] == '\\') fail("escapes in strings are not supported");
        v.text.push_back(s_[pos_++]);
      }
      expect(c);
      return v;
    }
    if (c == '(' || c == '[') {
      const char close = c == '(' ? ')' : ']';
      ++pos_;
      v.kind = PyValue::kTuple;
      for (;;) {
        skip_space();
        if (peek() == close) {
          ++pos_;
          return v;
        }
        v.items.push_back(parse_value(depth + 1));
        skip_space();
        if (peek() == ',') {
          ++pos_;
          continue;
        }
        expect(close);
        return v;
      }
    }
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '-') {
      const std::size_t start = pos_;
      if (c == '-') ++pos_;
      std::int64_t value = 0;
      bool any = false;
      while (std::isdigit(static_cast<unsigned char>(peek()))) {
        const int digit = peek() - '0';
        if (value > (std::numeric_limits<std::int64_t>::max() - digit) / 10) fail("integer too large");
        value = value * 10 + digit;
        any = true;
        ++pos_;
      }
      if (!any) fail("bad number at offset " + std::to_string(start));
      if (peek() == 'L') ++pos_;  // Python 2 long suffix, as old numpy wrote it
      v.kind = PyValue::kInt;
      v.integer = c == '-' ? -value : value;
      return v;
    }
    for (const char* word : {"True", "False", "None"}) {
      const std::size_t len = std::strlen(word);
      if (s_.compare(pos_, len, word) == 0) {
        pos_ += len;
        if (word[0] == 'N') {
          v.kind = PyValue::kNone;
        } else {
          v.kind = PyValue::kBool;
          v.boolean = word[0] == 'T';
        }
        return v;
      }
    }
    fail("unexpected character at offset " + std::to_string(pos_));
  }

  const std::string& s_;
  const std::string& name_;
  std::size_t pos_ = 0;
};

// Normalises a simple numpy descr to "<kN" or "|kN" and returns the item size, or nullopt.
std::optional<std::size_t> normalise_descr(std::string* descr, const std::string& name) {
  const std::string& d = *descr;
  if (d.size() < 3) return std::nullopt;
  char order = d[0];
  const char kind = d[1];
  if (order != '<' && order != '>' && order != '|' && order != '=') return std::nullopt;
  if (std::string("biufc").find(kind) == std::string::npos) return std::nullopt;
  std::size_t size = 0;
  for (std::size_t i = 2; i < d.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(d[i])) || size > 64) return std::nullopt;
    size = size * 10 + static_cast<std::size_t>(d[i] - '0');
  }
  if (size == 0 || size > 16) return std::nullopt;
  if (order == '=') order = host_is_little_endian() ? '<' : '>';
  if (size == 1) {
    order = '|';
  } else if (order == '>') {
    throw InputError(name + ": big-endian .npy data (" + d + ") is not supported");
  } else if (order == '|') {
    return std::nullopt;  // multi-byte types need a byte order
  }
  *descr = std::string(1, order) + kind + std::to_string(size);
  return size;
}

template <typename T>
T load(const std::uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

}  // namespace

std::int64_t NpyArray::numel() const {
  std::int64_t n = 1;
  for (std::int64_t d : shape) n *= d;
  return n;
}

std::vector<float> NpyArray::to_float() const {
  const auto n = static_cast<std::size_t>(numel());
  std::vector<float> out(n);
  const std::uint8_t* p = bytes.data();
  std::size_t item = 0;
  if (dtype == "<f4") item = 4;
  else if (dtype == "<f8") item = 8;
  else if (dtype == "<i8") item = 8;
  else if (dtype == "<i4") item = 4;
  else if (dtype == "|u1") item = 1;
  else throw InputError("npy array of dtype '" + dtype + "' cannot be converted to float");
  if (bytes.size() != n * item) throw InputError("npy array data size does not match its shape");
  if (!host_is_little_endian() && item > 1) throw InputError("npy arrays are only converted on little-endian hosts");
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint8_t* e = p + i * item;
    if (dtype == "<f4") out[i] = load<float>(e);
    else if (dtype == "<f8") out[i] = static_cast<float>(load<double>(e));
    else if (dtype == "<i8") out[i] = static_cast<float>(load<std::int64_t>(e));
    else if (dtype == "<i4") out[i] = static_cast<float>(load<std::int32_t>(e));
    else out[i] = static_cast<float>(*e);
  }
  return out;
}

void write_npy(const std::string& path, const float* data, const std::vector<std::int64_t>& shape) {
  const std::uint64_t n = checked_numel(shape, path);
  if (!host_is_little_endian()) throw OutputError(path + ": writing .npy needs a little-endian host");
  write_file(path, npy_header("<f4", shape), data, static_cast<std::size_t>(n * 4));
}

void write_npy(const std::string& path, const cv::Mat& map) {
  if (map.depth() != CV_32F) throw UsageError(path + ": .npy maps must be CV_32F");
  if (map.dims > 2) throw UsageError(path + ": .npy maps must be 2-D matrices");
  std::vector<std::int64_t> shape{map.rows, map.cols};
  if (map.channels() > 1) shape.push_back(map.channels());
  if (map.isContinuous() || map.empty()) {
    write_npy(path, map.ptr<float>(), shape);
    return;
  }
  cv::Mat copy = map.clone();  // clone() is continuous
  write_npy(path, copy.ptr<float>(), shape);
}

void write_npy_int64(const std::string& path, const std::int64_t* data, const std::vector<std::int64_t>& shape) {
  const std::uint64_t n = checked_numel(shape, path);
  if (!host_is_little_endian()) throw OutputError(path + ": writing .npy needs a little-endian host");
  write_file(path, npy_header("<i8", shape), data, static_cast<std::size_t>(n * 8));
}

NpyRowWriter::NpyRowWriter(std::string path, std::string descr, std::vector<std::int64_t> row_shape)
    : path_(std::move(path)), tmp_(path_ + ".tmp"), descr_(std::move(descr)), row_shape_(std::move(row_shape)) {
  if (descr_ != "<f4" && descr_ != "<i8") throw UsageError(path_ + ": NpyRowWriter writes <f4 or <i8, not " + descr_);
  if (!host_is_little_endian()) throw OutputError(path_ + ": writing .npy needs a little-endian host");
  row_items_ = static_cast<std::int64_t>(checked_numel(row_shape_, path_));
  file_ = std::fopen(tmp_.c_str(), "wb");
  if (file_ == nullptr) throw OutputError(path_ + ": cannot write (" + std::strerror(errno) + ")");
  std::vector<std::int64_t> shape{0};
  shape.insert(shape.end(), row_shape_.begin(), row_shape_.end());
  const std::string header = npy_header(descr_, shape);
  if (std::fwrite(header.data(), 1, header.size(), file_) != header.size()) {
    const int err = errno;
    std::fclose(file_);
    file_ = nullptr;
    std::remove(tmp_.c_str());
    throw OutputError(path_ + ": cannot write (" + std::strerror(err) + ")");
  }
}

NpyRowWriter::~NpyRowWriter() {
  if (file_ != nullptr) {
    std::fclose(file_);
    std::remove(tmp_.c_str());
  }
}

void NpyRowWriter::append_bytes(const void* data, std::size_t bytes, std::int64_t rows) {
  if (file_ == nullptr) throw UsageError(path_ + ": rows appended after finish()");
  if (bytes > 0 && std::fwrite(data, 1, bytes, file_) != bytes) {
    throw OutputError(path_ + ": cannot write (" + std::strerror(errno) + ")");
  }
  rows_ += rows;
}

void NpyRowWriter::append_f32(const float* rows_data, std::int64_t rows) {
  if (descr_ != "<f4") throw UsageError(path_ + ": float rows appended to a " + descr_ + " array");
  append_bytes(rows_data, static_cast<std::size_t>(rows * row_items_) * 4, rows);
}

void NpyRowWriter::append_i64(const std::int64_t* rows_data, std::int64_t rows) {
  if (descr_ != "<i8") throw UsageError(path_ + ": integer rows appended to a " + descr_ + " array");
  append_bytes(rows_data, static_cast<std::size_t>(rows * row_items_) * 8, rows);
}

void NpyRowWriter::finish() {
  if (file_ == nullptr) return;
  std::vector<std::int64_t> shape{rows_};
  shape.insert(shape.end(), row_shape_.begin(), row_shape_.end());
  const std::string header = npy_header(descr_, shape);
  bool ok = std::fseek(file_, 0, SEEK_SET) == 0 && std::fwrite(header.data(), 1, header.size(), file_) == header.size();
  int err = ok ? 0 : errno;
  if (std::fclose(file_) != 0 && ok) {
    ok = false;
    err = errno;
  }
  file_ = nullptr;
  if (ok && std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    ok = false;
    err = errno;
  }
  if (!ok) {
    std::remove(tmp_.c_str());
    throw OutputError(path_ + ": cannot write (" + std::strerror(err) + ")");
  }
}

NpyArray parse_npy(const std::uint8_t* data, std::size_t size, const std::string& name) {
  if (size < kMagicLen + 2 || std::memcmp(data, kMagic, kMagicLen) != 0) {
    throw InputError(name + ": not a .npy file (bad magic)");
  }
  const int major = data[6];
  const int minor = data[7];
  if (!((major == 1 || major == 2 || major == 3) && minor == 0)) {
    throw InputError(name + ": unsupported .npy version " + std::to_string(major) + "." + std::to_string(minor));
  }
  const std::size_t len_bytes = major == 1 ? 2 : 4;
  if (size < kMagicLen + 2 + len_bytes) throw InputError(name + ": truncated .npy header");
  std::uint64_t header_len = 0;
  for (std::size_t i = 0; i < len_bytes; ++i) header_len |= std::uint64_t(data[8 + i]) << (8 * i);
  const std::size_t header_start = kMagicLen + 2 + len_bytes;
  if (header_len > size - header_start) throw InputError(name + ": truncated .npy header");
  // Version 3 headers are UTF-8, older ones latin-1; both are only ever ASCII in practice, and the
  // parser below treats the bytes as opaque inside strings.
  const std::string text(reinterpret_cast<const char*>(data + header_start), static_cast<std::size_t>(header_len));

  HeaderParser parser(text, name);
  const auto dict = parser.parse_dict();
  const PyValue* descr = nullptr;
  const PyValue* fortran = nullptr;
  const PyValue* shape = nullptr;
  for (const auto& [key, value] : dict) {
    const PyValue** slot = key == "descr" ? &descr : key == "fortran_order" ? &fortran : key == "shape" ? &shape : nullptr;
    if (slot == nullptr) throw InputError(name + ": invalid .npy header (unexpected key '" + key + "')");
    if (*slot != nullptr) throw InputError(name + ": invalid .npy header (key '" + key + "' given twice)");
    *slot = &value;
  }
  if (descr == nullptr || fortran == nullptr || shape == nullptr) {
    throw InputError(name + ": invalid .npy header (needs 'descr', 'fortran_order' and 'shape')");
  }
  if (descr->kind != PyValue::kString) throw InputError(name + ": structured .npy dtypes are not supported");
  if (fortran->kind != PyValue::kBool) throw InputError(name + ": invalid .npy header ('fortran_order' is not a bool)");
  if (fortran->boolean) throw InputError(name + ": Fortran-ordered .npy arrays are not supported");
  if (shape->kind != PyValue::kTuple) throw InputError(name + ": invalid .npy header ('shape' is not a tuple)");

  NpyArray array;
  array.dtype = descr->text;
  const auto item = normalise_descr(&array.dtype, name);
  if (!item) throw InputError(name + ": unsupported .npy dtype '" + descr->text + "'");

  std::uint64_t numel = 1;
  for (const PyValue& dim : shape->items) {
    if (dim.kind != PyValue::kInt || dim.integer < 0) {
      throw InputError(name + ": invalid .npy header (shape entries must be non-negative integers)");
    }
    const auto d = static_cast<std::uint64_t>(dim.integer);
    if (d != 0 && numel > std::numeric_limits<std::uint64_t>::max() / 16 / d) {
      throw InputError(name + ": .npy array shape is too large");
    }
    numel *= d;
    array.shape.push_back(dim.integer);
  }
  const std::uint64_t data_bytes = numel * *item;
  const std::uint64_t available = size - header_start - header_len;
  if (data_bytes > available) {
    throw InputError(name + ": truncated .npy data (shape needs " + std::to_string(data_bytes) + " bytes, file has " +
                     std::to_string(available) + ")");
  }
  if (data_bytes < available) {
    throw InputError(name + ": .npy file has " + std::to_string(available - data_bytes) +
                     " bytes of trailing data after the array");
  }
  const std::uint8_t* begin = data + header_start + header_len;
  array.bytes.assign(begin, begin + data_bytes);
  return array;
}

NpyArray read_npy(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw InputError(path + ": cannot read (" + std::strerror(errno) + ")");
  if (S_ISDIR(st.st_mode)) throw InputError(path + ": is a directory, not a .npy file");
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) throw InputError(path + ": cannot read (" + std::strerror(errno) + ")");
  std::vector<std::uint8_t> bytes;
  std::uint8_t chunk[1 << 16];
  for (;;) {
    const std::size_t got = std::fread(chunk, 1, sizeof(chunk), f.get());
    bytes.insert(bytes.end(), chunk, chunk + got);
    if (got < sizeof(chunk)) {
      if (std::ferror(f.get())) throw InputError(path + ": read error");
      break;
    }
  }
  return parse_npy(bytes.data(), bytes.size(), path);
}

}  // namespace cnnvis
