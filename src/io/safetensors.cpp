// Validating .safetensors reader and writer. Weights files come from anywhere, so every field of the
// header is checked before any offset is used to touch memory.
#include "cnnvis/io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

#include "cnnvis/core/errors.h"

namespace cnnvis {

namespace {

using nlohmann::json;

// The reader copies raw little-endian bytes into host integers/floats.
static_assert(sizeof(float) == 4, "float must be IEEE-754 binary32");

bool host_is_little_endian() {
  const std::uint16_t probe = 1;
  std::uint8_t first = 0;
  std::memcpy(&first, &probe, 1);
  return first == 1;
}

std::uint64_t load_le64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Tensor names come from the file: keep messages on one line and of sane length.
std::string printable(const std::string& text, std::size_t max_len = 200) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (out.size() >= max_len) {
      out += "...";
      break;
    }
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

std::string quoted(const std::string& name) { return "'" + printable(name) + "'"; }

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

[[noreturn]] void fail(const std::string& name, const std::string& problem) {
  throw WeightsError(name + ": " + problem);
}

// A JSON value that is an integer >= 0 (floats such as 3.0 and integers beyond 64 bits, which the
// parser turns into floats, are rejected).
bool as_non_negative_integer(const json& value, std::uint64_t* out) {
  if (value.is_number_unsigned()) {
    *out = value.get<std::uint64_t>();
    return true;
  }
  if (value.is_number_integer()) {
    const auto v = value.get<std::int64_t>();
    if (v < 0) return false;
    *out = static_cast<std::uint64_t>(v);
    return true;
  }
  return false;
}

bool parse_dtype(const std::string& text, DType* out) {
  if (text == "F32") *out = DType::F32;
  else if (text == "F16") *out = DType::F16;
  else if (text == "BF16") *out = DType::BF16;
  else if (text == "I64") *out = DType::I64;
  else return false;
  return true;
}

constexpr int kMaxJsonDepth = 16;  // the format needs 3 levels; deeper nesting is junk or an attack

// nlohmann keeps the last of duplicate keys, which would let one tensor silently shadow another. This
// parser callback tracks the keys of every open object and rejects a repeat.
class DuplicateKeyGuard {
 public:
  explicit DuplicateKeyGuard(const std::string& name) : name_(name) {}
  bool operator()(int depth, json::parse_event_t event, json& parsed) {
    if (depth > kMaxJsonDepth) fail(name_, "header JSON is nested too deeply");
    switch (event) {
      case json::parse_event_t::object_start:
        open_.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!open_.empty()) open_.pop_back();
        break;
      case json::parse_event_t::key: {
        const std::string& key = parsed.get_ref<const std::string&>();
        if (!open_.empty() && !open_.back().insert(key).second) {
          fail(name_, "header JSON has the key " + quoted(key) + " more than once");
        }
        break;
      }
      default:
        break;
    }
    return true;
  }

 private:
  const std::string& name_;
  std::vector<std::set<std::string>> open_;
};

std::uint16_t load_le16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] | (p[1] << 8)); }

float bits_to_float(std::uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exponent = (h >> 10) & 0x1fu;
  const std::uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0) {
    // Zero or subnormal: mantissa * 2^-24, exact in float32.
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 31) {
    // Inf (mantissa 0) or NaN; the payload is kept in the top mantissa bits.
    return bits_to_float(sign | 0x7f800000u | (mantissa << 13));
  }
  // Normal: rebias the exponent from 15 to 127.
  return bits_to_float(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

struct FdCloser {
  int fd = -1;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

std::string errno_text(int err) { return std::strerror(err); }

}  // namespace

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::I64: return "I64";
  }
  return "?";
}

std::size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::F32: return 4;
    case DType::F16: return 2;
    case DType::BF16: return 2;
    case DType::I64: return 8;
  }
  return 0;
}

std::int64_t TensorEntry::numel() const {
  std::int64_t n = 1;
  for (std::int64_t d : shape) n *= d;
  return n;
}

SafetensorsHeader parse_safetensors(const std::uint8_t* data, std::size_t size, const std::string& name,
                                    const SafetensorsLimits& limits) {
  if (size == 0) fail(name, "file is empty, not a safetensors file");
  if (size < 8) {
    fail(name, "file is too small to be a safetensors file (" + std::to_string(size) + " bytes)");
  }
  if (size > limits.max_file_bytes) {
    fail(name, "file is " + std::to_string(size) + " bytes, over the limit of " +
                   std::to_string(limits.max_file_bytes) + " bytes");
  }
  const std::uint64_t header_len = load_le64(data);
  if (header_len > limits.max_header_bytes) {
    fail(name, "header length " + std::to_string(header_len) + " exceeds the limit of " +
                   std::to_string(limits.max_header_bytes) + " bytes (not a safetensors file?)");
  }
  if (header_len > size - 8) {
    fail(name, "header length " + std::to_string(header_len) + " is larger than the file (" +
                   std::to_string(size) + " bytes): truncated or not a safetensors file");
  }
  const std::uint64_t data_offset = 8 + header_len;
  const std::uint64_t data_size = size - data_offset;

  json root;
  {
    const char* begin = reinterpret_cast<const char*>(data + 8);
    const char* end = begin + header_len;
    DuplicateKeyGuard guard(name);
    try {
      root = json::parse(begin, end, std::ref(guard));
    } catch (const json::parse_error& e) {
      fail(name, "header is not valid JSON (at byte " + std::to_string(e.byte) + " of the header)");
    } catch (const json::out_of_range&) {
      // nlohmann throws this (not parse_error) for a number beyond double's range, e.g. 1e999.
      fail(name, "header is not valid JSON (a number is out of range)");
    }
  }
  if (!root.is_object()) fail(name, "header is not a JSON object");

  SafetensorsHeader header;
  header.data_offset = data_offset;
  for (auto it = root.begin(); it != root.end(); ++it) {
    const std::string& key = it.key();
    const json& value = it.value();
    if (key == "__metadata__") {
      if (!value.is_object()) fail(name, "__metadata__ is not a JSON object");
      for (auto m = value.begin(); m != value.end(); ++m) {
        if (!m.value().is_string()) fail(name, "__metadata__ value " + quoted(m.key()) + " is not a string");
        header.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    if (header.entries.size() >= limits.max_tensors) {
      fail(name, "more than " + std::to_string(limits.max_tensors) + " tensors");
    }
    const std::string tensor = "tensor " + quoted(key);
    if (!value.is_object()) fail(name, tensor + " is not a JSON object");
    for (auto f = value.begin(); f != value.end(); ++f) {
      if (f.key() != "dtype" && f.key() != "shape" && f.key() != "data_offsets") {
        fail(name, tensor + " has unexpected field " + quoted(f.key()));
      }
    }
    for (const char* field : {"dtype", "shape", "data_offsets"}) {
      if (!value.contains(field)) fail(name, tensor + " has no '" + field + "'");
    }

    TensorEntry entry;
    entry.name = key;

    const json& dtype = value["dtype"];
    if (!dtype.is_string()) fail(name, tensor + ": 'dtype' is not a string");
    if (!parse_dtype(dtype.get_ref<const std::string&>(), &entry.dtype)) {
      fail(name, tensor + " has dtype " + printable(dtype.get<std::string>(), 40) +
                     "; cnnvis reads F32, F16, BF16 and I64");
    }

    const json& shape = value["shape"];
    if (!shape.is_array()) fail(name, tensor + ": 'shape' is not an array");
    if (shape.size() > limits.max_rank) {
      fail(name, tensor + " has rank " + std::to_string(shape.size()) + ", over the limit of " +
                     std::to_string(limits.max_rank));
    }
    // numel must fit in int64 (TensorEntry::numel) and numel * element size in uint64.
    std::uint64_t numel = 1;
    bool overflow = false;
    for (const json& dim : shape) {
      std::uint64_t d = 0;
      if (!as_non_negative_integer(dim, &d)) {
        fail(name, tensor + ": shape " + printable(shape.dump(), 120) + " must hold non-negative integers");
      }
      if (d > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) overflow = true;
      entry.shape.push_back(static_cast<std::int64_t>(std::min<std::uint64_t>(d, INT64_MAX)));
      if (numel != 0 && d != 0 && numel > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) / d) {
        overflow = true;
      }
      numel *= d;  // only used when no overflow was seen
    }
    const std::uint64_t elem = dtype_size(entry.dtype);
    if (!overflow && numel > std::numeric_limits<std::uint64_t>::max() / elem) overflow = true;
    if (overflow) fail(name, tensor + ": shape " + printable(shape.dump(), 120) + " is too large");
    const std::uint64_t nbytes = numel * elem;

    const json& offsets = value["data_offsets"];
    std::uint64_t begin = 0, end = 0;
    if (!offsets.is_array() || offsets.size() != 2 || !as_non_negative_integer(offsets[0], &begin) ||
        !as_non_negative_integer(offsets[1], &end)) {
      fail(name, tensor + ": 'data_offsets' must be two non-negative integers [begin, end]");
    }
    const std::string offsets_text = "[" + std::to_string(begin) + ", " + std::to_string(end) + "]";
    if (begin > end) fail(name, tensor + ": data_offsets " + offsets_text + " have begin after end");
    if (end - begin != nbytes) {
      fail(name, tensor + ": shape " + shape_text(entry.shape) + " with dtype " + dtype_name(entry.dtype) +
                     " needs " + std::to_string(nbytes) + " bytes but data_offsets " + offsets_text + " span " +
                     std::to_string(end - begin));
    }
    if (end > data_size) {
      fail(name, tensor + ": data_offsets " + offsets_text + " lie outside the data section (" +
                     std::to_string(data_size) + " bytes): file truncated?");
    }
    entry.begin = begin;
    entry.end = end;
    header.entries.push_back(std::move(entry));
  }

  std::sort(header.entries.begin(), header.entries.end(), [](const TensorEntry& a, const TensorEntry& b) {
    if (a.begin != b.begin) return a.begin < b.begin;
    if (a.end != b.end) return a.end < b.end;
    return a.name < b.name;
  });
  // Sorted by begin, a tensor overlaps an earlier one exactly when it starts before the furthest end
  // seen so far. Empty tensors occupy no bytes and cannot overlap anything.
  const TensorEntry* furthest = nullptr;
  for (const TensorEntry& entry : header.entries) {
    if (entry.begin == entry.end) continue;
    if (furthest != nullptr && entry.begin < furthest->end) {
      fail(name, "tensors " + quoted(furthest->name) + " and " + quoted(entry.name) + " overlap in the data section");
    }
    if (furthest == nullptr || entry.end > furthest->end) furthest = &entry;
  }
  return header;
}

SafetensorsFile SafetensorsFile::open(const std::string& path, const SafetensorsLimits& limits) {
  // O_NONBLOCK: opening a FIFO by mistake must not hang; it is rejected right after by fstat.
  FdCloser fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK)};
  if (fd.fd < 0) fail(path, "cannot open weights file (" + errno_text(errno) + ")");
  struct stat st {};
  if (::fstat(fd.fd, &st) != 0) fail(path, "cannot stat weights file (" + errno_text(errno) + ")");
  if (S_ISDIR(st.st_mode)) fail(path, "is a directory, not a safetensors file");
  if (!S_ISREG(st.st_mode)) fail(path, "is not a regular file");
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (size == 0) fail(path, "file is empty, not a safetensors file");
  if (size < 8) fail(path, "file is too small to be a safetensors file (" + std::to_string(size) + " bytes)");
  if (size > limits.max_file_bytes) {
    fail(path, "file is " + std::to_string(size) + " bytes, over the limit of " +
                   std::to_string(limits.max_file_bytes) + " bytes");
  }
  if (size > std::numeric_limits<std::size_t>::max()) fail(path, "file is too large to map");

  // MAP_PRIVATE + PROT_READ: the file is never modified through the mapping. (If another process
  // truncates the file while it is mapped, reads past the new end raise SIGBUS; nothing portable
  // prevents that.)
  void* mapping = ::mmap(nullptr, static_cast<std::size_t>(size), PROT_READ, MAP_PRIVATE, fd.fd, 0);
  if (mapping == MAP_FAILED) fail(path, "cannot map weights file (" + errno_text(errno) + ")");

  SafetensorsFile file;
  file.path_ = path;
  file.mapping_ = static_cast<const std::uint8_t*>(mapping);
  file.size_ = size;
  // From here the destructor unmaps if parsing throws.
  file.header_ = parse_safetensors(file.mapping_, static_cast<std::size_t>(size), path, limits);
  return file;
}

SafetensorsFile::SafetensorsFile(SafetensorsFile&& other) noexcept
    : path_(std::move(other.path_)),
      mapping_(std::exchange(other.mapping_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      header_(std::move(other.header_)) {}

SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&& other) noexcept {
  if (this != &other) {
    if (mapping_ != nullptr) ::munmap(const_cast<std::uint8_t*>(mapping_), static_cast<std::size_t>(size_));
    path_ = std::move(other.path_);
    mapping_ = std::exchange(other.mapping_, nullptr);
    size_ = std::exchange(other.size_, 0);
    header_ = std::move(other.header_);
  }
  return *this;
}

SafetensorsFile::~SafetensorsFile() {
  if (mapping_ != nullptr) ::munmap(const_cast<std::uint8_t*>(mapping_), static_cast<std::size_t>(size_));
}

const TensorEntry* SafetensorsFile::find(const std::string& name) const {
  for (const TensorEntry& entry : header_.entries) {
    if (entry.name == name) return &entry;
  }
  return nullptr;
}

const std::uint8_t* SafetensorsFile::data(const TensorEntry& entry) const {
  return mapping_ + header_.data_offset + entry.begin;
}

void convert_to_f32(const TensorEntry& entry, const std::uint8_t* src, float* dst) {
  const std::int64_t n = entry.numel();
  // The data section is not necessarily aligned, so every element is read with memcpy or bytewise.
  switch (entry.dtype) {
    case DType::F32:
      if (n == 0) return;  // an empty tensor: dst may be null, and memcpy must not see it
      if (host_is_little_endian()) {
        std::memcpy(dst, src, static_cast<std::size_t>(n) * 4);
      } else {
        for (std::int64_t i = 0; i < n; ++i) {
          const std::uint8_t* p = src + 4 * i;
          dst[i] = bits_to_float(std::uint32_t(p[0]) | (std::uint32_t(p[1]) << 8) | (std::uint32_t(p[2]) << 16) |
                                 (std::uint32_t(p[3]) << 24));
        }
      }
      return;
    case DType::F16:
      for (std::int64_t i = 0; i < n; ++i) dst[i] = half_to_float(load_le16(src + 2 * i));
      return;
    case DType::BF16:
      // bfloat16 is the top half of a float32, NaN and inf included.
      for (std::int64_t i = 0; i < n; ++i) dst[i] = bits_to_float(std::uint32_t(load_le16(src + 2 * i)) << 16);
      return;
    case DType::I64:
      throw WeightsError("tensor " + quoted(entry.name) + " has dtype I64 and cannot be read as float");
  }
}

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  auto write_fail = [&](const std::string& problem) -> void { throw OutputError(path + ": " + problem); };

  // ordered_json keeps the entries in the caller's order, matching their order in the data section.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [key, value] : metadata) meta[key] = value;
    header["__metadata__"] = std::move(meta);
  }
  std::set<std::string> names;
  std::vector<std::uint64_t> sizes;
  std::uint64_t offset = 0;
  for (const TensorToWrite& t : tensors) {
    if (t.name == "__metadata__") write_fail("tensor name '__metadata__' is reserved");
    if (!names.insert(t.name).second) write_fail("duplicate tensor name " + quoted(t.name));
    std::uint64_t numel = 1;
    for (std::int64_t d : t.shape) {
      if (d < 0) write_fail("tensor " + quoted(t.name) + " has a negative dimension");
      numel *= static_cast<std::uint64_t>(d);
    }
    const std::uint64_t nbytes = numel * dtype_size(t.dtype);
    if (nbytes > 0 && t.data == nullptr) write_fail("tensor " + quoted(t.name) + " has no data");
    nlohmann::ordered_json entry = nlohmann::ordered_json::object();
    entry["dtype"] = dtype_name(t.dtype);
    entry["shape"] = t.shape;
    entry["data_offsets"] = {offset, offset + nbytes};
    header[t.name] = std::move(entry);
    sizes.push_back(nbytes);
    offset += nbytes;
  }

  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::type_error&) {
    write_fail("a tensor name or metadata string is not valid UTF-8");
  }
  // Like the format's reference writer: pad with spaces so the data section starts 8-byte aligned.
  text.append((8 - text.size() % 8) % 8, ' ');
  std::uint8_t len_le[8];
  for (int i = 0; i < 8; ++i) len_le[i] = static_cast<std::uint8_t>(static_cast<std::uint64_t>(text.size()) >> (8 * i));

  // Written next to the target and renamed into place, so a failed write never leaves a file that
  // looks like weights.
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) write_fail("cannot write (" + errno_text(errno) + ")");
  bool ok = std::fwrite(len_le, 1, 8, f) == 8 && std::fwrite(text.data(), 1, text.size(), f) == text.size();
  for (std::size_t i = 0; ok && i < tensors.size(); ++i) {
    if (sizes[i] > 0) ok = std::fwrite(tensors[i].data, 1, sizes[i], f) == sizes[i];
  }
  int err = ok ? 0 : errno;
  if (std::fclose(f) != 0 && ok) {
    ok = false;
    err = errno;
  }
  if (!ok) {
    std::remove(tmp.c_str());
    write_fail("cannot write (" + errno_text(err) + ")");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    err = errno;
    std::remove(tmp.c_str());
    write_fail("cannot write (" + errno_text(err) + ")");
  }
}

}  // namespace cnnvis
