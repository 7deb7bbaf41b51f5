// IDX reader (plain or gzipped) with strict validation, and the Fashion-MNIST loader built on it.
#include "cnnvis/io/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "cnnvis/core/errors.h"

namespace cnnvis {
namespace {

// Upper bound on any buffer we read or inflate. A valid IDX file holds at most 1e9 elements plus a
// 20-byte header, which fits below this, so the cap only ever stops bad input (e.g. a gzip bomb).
constexpr std::size_t kMaxBytes = std::size_t{1} << 30;
constexpr std::uint64_t kMaxElements = 1000000000ULL;

std::string hex32(std::uint32_t value) {
  char buffer[16];
  std::snprintf(buffer, sizeof(buffer), "0x%08X", static_cast<unsigned>(value));
  return buffer;
}

std::string hex8(unsigned value) {
  char buffer[8];
  std::snprintf(buffer, sizeof(buffer), "0x%02X", value & 0xFFu);
  return buffer;
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::uint32_t read_be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
}

std::vector<std::uint8_t> read_file_bytes(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw InputError(path + ": is a directory, expected an IDX file");
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const bool exists = std::filesystem::exists(path, ec);
    throw InputError(path + (exists ? ": cannot open file for reading" : ": file not found"));
  }
  in.seekg(0, std::ios::end);
  const std::streamoff length = in.tellg();
  if (length < 0) throw InputError(path + ": cannot determine file size");
  if (static_cast<std::uint64_t>(length) > kMaxBytes)
    throw InputError(path + ": file is " + std::to_string(length) + " bytes, larger than the 1 GiB limit");
  in.seekg(0, std::ios::beg);
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(length));
  if (length > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), length))
    throw InputError(path + ": read error");
  return bytes;
}

// Gunzips a whole buffer. Concatenated gzip members are accepted (gzip allows them); anything else
// after the last member, a stream that ends early, or output beyond kMaxBytes is an error.
std::vector<std::uint8_t> gunzip(const std::vector<std::uint8_t>& compressed, const std::string& path) {
  if (compressed.empty()) throw InputError(path + ": empty file (expected gzip data)");
  z_stream stream{};
  // 16 + MAX_WBITS: expect a gzip wrapper (not raw deflate or zlib).
  if (inflateInit2(&stream, 16 + MAX_WBITS) != Z_OK) throw InputError(path + ": cannot initialise zlib");
  struct Guard {
    z_stream* s;
    ~Guard() { inflateEnd(s); }
  } guard{&stream};

  std::vector<std::uint8_t> out;
  // The gzip trailer stores the uncompressed size mod 2^32: a good reservation hint for real files. It is
  // untrusted, so it is capped by the limit and by deflate's maximum ratio (about 1032:1).
  if (compressed.size() >= 18) {
    const std::uint8_t* t = compressed.data() + compressed.size() - 4;
    const std::size_t hint = std::size_t{t[0]} | (std::size_t{t[1]} << 8) | (std::size_t{t[2]} << 16) |
                             (std::size_t{t[3]} << 24);
    out.reserve(std::min({hint, kMaxBytes, compressed.size() * 1032}));
  }
  std::size_t consumed = 0;
  bool member_done = false;
  constexpr std::size_t kChunk = std::size_t{1} << 20;
  while (true) {
    if (out.size() >= kMaxBytes) throw InputError(path + ": decompressed data exceeds the 1 GiB limit");
    const std::size_t old_size = out.size();
    const std::size_t grow = std::min(kChunk, kMaxBytes - old_size);
    out.resize(old_size + grow);
    // zlib counts in uInt; feed input in pieces it can represent.
    const std::size_t remaining_in = compressed.size() - consumed;
    const std::size_t feed = std::min<std::size_t>(remaining_in, std::numeric_limits<uInt>::max());
    stream.next_in = const_cast<Bytef*>(compressed.data() + consumed);
    stream.avail_in = static_cast<uInt>(feed);
    stream.next_out = out.data() + old_size;
    stream.avail_out = static_cast<uInt>(grow);
    const int rc = inflate(&stream, Z_NO_FLUSH);
    consumed += feed - stream.avail_in;
    out.resize(old_size + (grow - stream.avail_out));
    if (rc == Z_STREAM_END) {
      member_done = true;
      if (consumed == compressed.size()) break;
      // Another gzip member follows only if it starts with the gzip magic.
      if (compressed.size() - consumed >= 2 && compressed[consumed] == 0x1f && compressed[consumed + 1] == 0x8b) {
        if (inflateReset(&stream) != Z_OK) throw InputError(path + ": zlib reset failed");
        member_done = false;
        continue;
      }
      throw InputError(path + ": trailing garbage after the gzip stream");
    }
    if (rc == Z_BUF_ERROR) {
      // No progress although output space was given: only possible when all input is used up.
      if (consumed == compressed.size()) break;
      throw InputError(path + ": gzip error: inflate made no progress");
    }
    if (rc != Z_OK) {
      const char* why = stream.msg != nullptr ? stream.msg : "corrupt data";
      throw InputError(path + ": gzip error: " + why);
    }
    if (consumed == compressed.size() && stream.avail_out != 0) break;  // input used up mid-stream
  }
  if (!member_done) throw InputError(path + ": truncated gzip stream (ends before the end-of-stream marker)");
  return out;
}

}  // namespace

IdxArray parse_idx(const std::uint8_t* data, std::size_t size, const std::string& name) {
  if (size == 0) throw InputError(name + ": empty file (expected an IDX header)");
  if (size < 4)
    throw InputError(name + ": truncated: " + std::to_string(size) + " bytes, too short for the 4-byte IDX magic");
  const std::uint32_t magic = read_be32(data);
  if (data[0] != 0 || data[1] != 0)
    throw InputError(name + ": bad IDX magic " + hex32(magic) +
                     " (expected 0x0000080N with type 0x08 unsigned byte)");
  if (data[2] != 0x08)
    throw InputError(name + ": unsupported IDX element type " + hex8(data[2]) + " in magic " + hex32(magic) +
                     " (only 0x08 unsigned byte is supported)");
  const int ndims = data[3];
  if (ndims < 1 || ndims > 4)
    throw InputError(name + ": bad IDX dimension count " + std::to_string(ndims) + " in magic " + hex32(magic) +
                     " (expected 1 to 4)");
  const std::size_t header = 4 + 4 * static_cast<std::size_t>(ndims);
  if (size < header)
    throw InputError(name + ": truncated: header needs " + std::to_string(header) + " bytes for " +
                     std::to_string(ndims) + " dimensions, file has " + std::to_string(size));

  IdxArray array;
  std::uint64_t count = 1;
  std::string shape;
  for (int i = 0; i < ndims; ++i) {
    const std::uint32_t dim = read_be32(data + 4 + 4 * i);
    shape += (i ? "x" : "") + std::to_string(dim);
    if (dim == 0) throw InputError(name + ": dimension " + std::to_string(i) + " is 0 (empty arrays are not valid)");
    count *= dim;  // cannot overflow: checked against 1e9 (< 2^30) after every step, and dims are < 2^32
    if (count > kMaxElements)
      throw InputError(name + ": dimensions exceed the limit of 1e9 elements (" + shape + (i + 1 < ndims ? "x..." : "") +
                       ")");
    array.dims.push_back(static_cast<std::int64_t>(dim));
  }
  const std::size_t available = size - header;
  if (available < count)
    throw InputError(name + ": truncated: header declares " + std::to_string(count) + " data bytes, file has " +
                     std::to_string(available));
  if (available > count)
    throw InputError(name + ": trailing data: header declares " + std::to_string(count) + " data bytes, file has " +
                     std::to_string(available));
  array.values.assign(data + header, data + header + count);
  return array;
}

IdxArray parse_idx_gzip(const std::uint8_t* data, std::size_t size, const std::string& name) {
  const std::vector<std::uint8_t> inflated = gunzip(std::vector<std::uint8_t>(data, data + size), name);
  return parse_idx(inflated.data(), inflated.size(), name);
}

IdxArray read_idx(const std::string& path) {
  std::vector<std::uint8_t> bytes = read_file_bytes(path);
  if (ends_with(path, ".gz")) bytes = gunzip(bytes, path);
  return parse_idx(bytes.data(), bytes.size(), path);
}

const std::vector<std::string>& fashion_mnist_class_names() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                 "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

FashionMnistSplit load_fashion_mnist(const std::string& dir, const std::string& split) {
  std::string stem;
  if (split == "train") {
    stem = "train";
  } else if (split == "test") {
    stem = "t10k";
  } else {
    throw UsageError("unknown Fashion-MNIST split '" + split + "' (expected train or test)");
  }
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    throw InputError(dir +
                     ": Fashion-MNIST directory not found; install Debian's dataset-fashion-mnist package "
                     "(apt install dataset-fashion-mnist) or point to a directory with the IDX files");

  // Debian ships the files gzipped; an unpacked copy (same name without .gz) is accepted too.
  const auto locate = [&](const std::string& base) {
    const std::filesystem::path gz = std::filesystem::path(dir) / (base + ".gz");
    const std::filesystem::path plain = std::filesystem::path(dir) / base;
    if (!std::filesystem::exists(gz, ec) && std::filesystem::exists(plain, ec)) return plain.string();
    return gz.string();
  };
  const std::string images_path = locate(stem + "-images-idx3-ubyte");
  const std::string labels_path = locate(stem + "-labels-idx1-ubyte");

  FashionMnistSplit result;
  result.images = read_idx(images_path);
  result.labels = read_idx(labels_path);

  const auto& idims = result.images.dims;
  if (idims.size() != 3 || idims[1] != 28 || idims[2] != 28) {
    std::string shape;
    for (std::size_t i = 0; i < idims.size(); ++i) shape += (i ? "x" : "") + std::to_string(idims[i]);
    throw InputError(images_path + ": expected images of shape Nx28x28, found " + shape);
  }
  if (result.labels.dims.size() != 1)
    throw InputError(labels_path + ": expected a 1-dimensional label array, found " +
                     std::to_string(result.labels.dims.size()) + " dimensions");
  if (result.labels.dims[0] != idims[0])
    throw InputError(labels_path + ": has " + std::to_string(result.labels.dims[0]) + " labels but " + images_path +
                     " has " + std::to_string(idims[0]) + " images");
  for (std::size_t i = 0; i < result.labels.values.size(); ++i) {
    if (result.labels.values[i] >= 10)
      throw InputError(labels_path + ": label " + std::to_string(result.labels.values[i]) + " at index " +
                       std::to_string(i) + " is out of range (expected 0..9)");
  }
  return result;
}

}  // namespace cnnvis
