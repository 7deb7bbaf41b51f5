// Reads an image's format and size from its first bytes, so that the pixel limit can be enforced
// before any decoder allocates memory. Every read goes through ByteReader, which checks bounds: the
// input is untrusted (and fuzzed), so no offset taken from the data is used unchecked.
#include <cstdint>
#include <cstring>
#include <optional>

#include "cnnvis/io/image_io.h"

namespace cnnvis {
namespace {

// Bounds-checked little/big-endian reads over a byte buffer. Reads past the end report failure
// instead of touching memory.
class ByteReader {
 public:
  ByteReader(const std::uint8_t* data, std::size_t size) : data_(data), size_(data ? size : 0) {}

  std::size_t size() const { return size_; }
  bool has(std::uint64_t offset, std::uint64_t count) const {
    return offset <= size_ && count <= size_ - offset;
  }
  bool u8(std::uint64_t offset, std::uint32_t* out) const {
    if (!has(offset, 1)) return false;
    *out = data_[offset];
    return true;
  }
  bool u16(std::uint64_t offset, bool big_endian, std::uint32_t* out) const {
    if (!has(offset, 2)) return false;
    const std::uint8_t* p = data_ + offset;
    *out = big_endian ? (std::uint32_t(p[0]) << 8 | p[1]) : (std::uint32_t(p[1]) << 8 | p[0]);
    return true;
  }
  bool u24le(std::uint64_t offset, std::uint32_t* out) const {
    if (!has(offset, 3)) return false;
    const std::uint8_t* p = data_ + offset;
    *out = std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16;
    return true;
  }
  bool u32(std::uint64_t offset, bool big_endian, std::uint32_t* out) const {
    if (!has(offset, 4)) return false;
    const std::uint8_t* p = data_ + offset;
    *out = big_endian ? (std::uint32_t(p[0]) << 24 | std::uint32_t(p[1]) << 16 | std::uint32_t(p[2]) << 8 | p[3])
                      : (std::uint32_t(p[3]) << 24 | std::uint32_t(p[2]) << 16 | std::uint32_t(p[1]) << 8 | p[0]);
    return true;
  }
  bool u64(std::uint64_t offset, bool big_endian, std::uint64_t* out) const {
    std::uint32_t a = 0, b = 0;
    if (!u32(offset, big_endian, &a) || !u32(offset + 4, big_endian, &b)) return false;
    *out = big_endian ? (std::uint64_t(a) << 32 | b) : (std::uint64_t(b) << 32 | a);
    return true;
  }
  bool matches(std::uint64_t offset, const char* bytes, std::size_t count) const {
    return has(offset, count) && std::memcmp(data_ + offset, bytes, count) == 0;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
};

ImageHeader make_header(const char* format, std::int64_t width = 0, std::int64_t height = 0) {
  ImageHeader header;
  header.format = format;
  header.width = width;
  header.height = height;
  return header;
}

std::optional<ImageHeader> sniff_png(const ByteReader& r) {
  // 8-byte signature, then the first chunk must be IHDR: length(4) "IHDR" width(4) height(4), big-endian.
  if (!r.matches(0, "\x89PNG\r\n\x1a\n", 8)) return std::nullopt;
  ImageHeader header = make_header("png");
  std::uint32_t w = 0, h = 0;
  if (r.matches(12, "IHDR", 4) && r.u32(16, true, &w) && r.u32(20, true, &h)) {
    header.width = w;
    header.height = h;
  }
  return header;
}

// Walks JPEG markers up to the first frame header (SOFn), or with want_scan up to the first start of
// scan (SOS). Returns the offset of that segment's length field, or 0 when it is not found before the
// scan data (for SOF), the end-of-image marker or the end of the buffer.
std::uint64_t find_jpeg_segment(const ByteReader& r, bool want_scan) {
  std::uint64_t pos = 2;  // after SOI
  while (pos < r.size()) {
    std::uint32_t byte = 0;
    r.u8(pos, &byte);
    if (byte != 0xFF) {
      // Garbage between segments: decoders skip it looking for the next marker; so do we.
      ++pos;
      continue;
    }
    // Any number of 0xFF fill bytes may precede a marker code.
    while (r.u8(pos, &byte) && byte == 0xFF) ++pos;
    std::uint32_t marker = 0;
    if (!r.u8(pos, &marker)) return 0;
    ++pos;  // pos now at the segment's length field (if it has one)
    if (marker == 0x00 || marker == 0x01 || marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7)) {
      continue;  // stuffed byte, TEM, SOI, RSTn: markers without a length
    }
    if (marker == 0xD9) return 0;  // EOI
    if (marker == 0xDA) return want_scan ? pos : 0;  // SOS; a frame header must come before it
    std::uint32_t length = 0;
    if (!r.u16(pos, true, &length) || length < 2) return 0;
    const bool is_sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (is_sof && !want_scan) return pos;
    pos += length;
  }
  return 0;
}

std::optional<ImageHeader> sniff_jpeg(const ByteReader& r) {
  if (!r.matches(0, "\xFF\xD8\xFF", 3)) return std::nullopt;
  ImageHeader header = make_header("jpeg");
  const std::uint64_t sof = find_jpeg_segment(r, false);
  // SOF: length(2) precision(1) height(2) width(2) components(1) ...
  std::uint32_t w = 0, h = 0;
  if (sof != 0 && r.u16(sof + 3, true, &h) && r.u16(sof + 5, true, &w)) {
    header.width = w;
    header.height = h;  // 0 means "defined by a DNL marker later", which decoders reject anyway
  }
  return header;
}

std::optional<ImageHeader> sniff_bmp(const ByteReader& r) {
  if (!r.matches(0, "BM", 2)) return std::nullopt;
  ImageHeader header = make_header("bmp");
  std::uint32_t dib_size = 0;
  if (!r.u32(14, false, &dib_size)) return header;  // cut short before the info header
  // Known info-header sizes: 12 (BITMAPCOREHEADER), 16..64 (OS/2 2.x), 40, 52, 56, 108, 124. Anything
  // else means "BM" was a coincidence (a text file starting with those letters).
  const bool known = dib_size == 12 || (dib_size >= 16 && dib_size <= 64) || dib_size == 108 || dib_size == 124;
  if (!known) return std::nullopt;
  if (dib_size == 12) {
    std::uint32_t w = 0, h = 0;
    if (r.u16(18, false, &w) && r.u16(20, false, &h)) {
      header.width = w;
      header.height = h;
    }
    return header;
  }
  std::uint32_t w = 0, h = 0;
  if (r.u32(18, false, &w) && r.u32(22, false, &h)) {
    // Signed 32-bit fields; a negative height means the rows are stored top-down.
    const std::int64_t sw = static_cast<std::int32_t>(w);
    const std::int64_t sh = static_cast<std::int32_t>(h);
    header.width = sw < 0 ? -sw : sw;
    header.height = sh < 0 ? -sh : sh;
  }
  return header;
}

std::optional<ImageHeader> sniff_gif(const ByteReader& r) {
  if (!r.matches(0, "GIF87a", 6) && !r.matches(0, "GIF89a", 6)) return std::nullopt;
  ImageHeader header = make_header("gif");
  std::uint32_t w = 0, h = 0;
  if (r.u16(6, false, &w) && r.u16(8, false, &h)) {
    header.width = w;
    header.height = h;
  }
  return header;
}

std::optional<ImageHeader> sniff_webp(const ByteReader& r) {
  if (!r.matches(0, "RIFF", 4) || !r.matches(8, "WEBP", 4)) return std::nullopt;
  ImageHeader header = make_header("webp");
  // The first chunk (at 12: fourcc, size, payload at 20) says which bitstream follows.
  if (r.matches(12, "VP8 ", 4)) {
    // Lossy: 3-byte frame tag, start code 9d 01 2a, then 16-bit width and height whose top 2 bits
    // are a scaling hint, not part of the size.
    std::uint32_t w = 0, h = 0;
    if (r.matches(23, "\x9d\x01\x2a", 3) && r.u16(26, false, &w) && r.u16(28, false, &h)) {
      header.width = w & 0x3FFF;
      header.height = h & 0x3FFF;
    }
  } else if (r.matches(12, "VP8L", 4)) {
    // Lossless: signature 0x2f, then 14 bits width-1 and 14 bits height-1, little-endian bit order.
    std::uint32_t signature = 0, bits = 0;
    if (r.u8(20, &signature) && signature == 0x2F && r.u32(21, false, &bits)) {
      header.width = std::int64_t(bits & 0x3FFF) + 1;
      header.height = std::int64_t((bits >> 14) & 0x3FFF) + 1;
    }
  } else if (r.matches(12, "VP8X", 4)) {
    // Extended: flags(1) reserved(3), then 24-bit canvas width-1 and height-1.
    std::uint32_t w = 0, h = 0;
    if (r.u24le(24, &w) && r.u24le(27, &h)) {
      header.width = std::int64_t(w) + 1;
      header.height = std::int64_t(h) + 1;
    }
  }
  return header;
}

std::optional<ImageHeader> sniff_tiff(const ByteReader& r) {
  bool big_endian = false;
  if (r.matches(0, "II", 2)) {
    big_endian = false;
  } else if (r.matches(0, "MM", 2)) {
    big_endian = true;
  } else {
    return std::nullopt;
  }
  std::uint32_t version = 0;
  if (!r.u16(2, big_endian, &version) || (version != 42 && version != 43)) return std::nullopt;
  ImageHeader header = make_header("tiff");
  const bool big_tiff = version == 43;

  // Classic TIFF: IFD offset u32 at 4; entries of 12 bytes: tag(2) type(2) count(4) value(4).
  // BigTIFF: offset u64 at 8; entries of 20 bytes: tag(2) type(2) count(8) value(8).
  std::uint64_t ifd = 0;
  std::uint64_t entry_count = 0;
  std::uint64_t entry_size = 12, count_size = 4;
  if (big_tiff) {
    entry_size = 20;
    count_size = 8;
    if (!r.u64(8, big_endian, &ifd) || !r.u64(ifd, big_endian, &entry_count)) return header;
    ifd += 8;
  } else {
    std::uint32_t offset = 0, count = 0;
    if (!r.u32(4, big_endian, &offset) || !r.u16(offset, big_endian, &count)) return header;
    ifd = std::uint64_t(offset) + 2;
    entry_count = count;
  }

  std::int64_t width = 0, height = 0;
  // Stop at the end of the buffer even if the count claims more entries than there are bytes.
  for (std::uint64_t i = 0; i < entry_count; ++i) {
    if (ifd > r.size() || i > (r.size() - ifd) / entry_size) break;
    const std::uint64_t entry = ifd + i * entry_size;
    std::uint32_t tag = 0, type = 0;
    if (!r.u16(entry, big_endian, &tag) || !r.u16(entry + 2, big_endian, &type)) break;
    if (tag != 256 && tag != 257) continue;
    // Values that fit are stored left-justified in the value field, so the first bytes hold them.
    const std::uint64_t value_at = entry + 4 + count_size;
    std::uint64_t value = 0;
    std::uint32_t v32 = 0;
    if (type == 3 && r.u16(value_at, big_endian, &v32)) {
      value = v32;  // SHORT
    } else if (type == 4 && r.u32(value_at, big_endian, &v32)) {
      value = v32;  // LONG
    } else if (type == 16 && big_tiff && r.u64(value_at, big_endian, &value)) {
      // LONG8 (BigTIFF only)
    } else {
      continue;
    }
    // Keep the value representable so that width * height cannot overflow downstream.
    const std::int64_t clamped = value > (1ull << 40) ? std::int64_t(1) << 40 : std::int64_t(value);
    (tag == 256 ? width : height) = clamped;
  }
  if (width > 0 && height > 0) {
    header.width = width;
    header.height = height;
  }
  return header;
}

// PNM: "P1".."P6", then whitespace-separated width and height, with '#' comments running to the end
// of the line. P7 (PAM) uses "WIDTH n" / "HEIGHT n" lines instead.
bool is_space(std::uint32_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }
bool is_digit(std::uint32_t c) { return c >= '0' && c <= '9'; }

// Reads the next decimal token, skipping whitespace and comments. Saturates huge numbers at 2^40
// (far over any limit) instead of overflowing.
bool next_pnm_number(const ByteReader& r, std::uint64_t* pos, std::int64_t* out) {
  std::uint32_t c = 0;
  for (;;) {
    if (!r.u8(*pos, &c)) return false;
    if (is_space(c)) {
      ++*pos;
    } else if (c == '#') {
      while (r.u8(*pos, &c) && c != '\n' && c != '\r') ++*pos;
    } else {
      break;
    }
  }
  if (!is_digit(c)) return false;
  std::int64_t value = 0;
  const std::int64_t cap = std::int64_t(1) << 40;
  while (r.u8(*pos, &c) && is_digit(c)) {
    value = value >= cap ? cap : value * 10 + std::int64_t(c - '0');
    ++*pos;
  }
  // A number running into the end of the buffer may have been cut short ("17" read as "1").
  if (!r.has(*pos, 1)) return false;
  *out = value > cap ? cap : value;
  return true;
}

std::optional<ImageHeader> sniff_pam(const ByteReader& r) {
  ImageHeader header = make_header("pnm");
  std::int64_t width = 0, height = 0;
  std::uint64_t pos = 3;
  // Header lines: keyword, value; ends at ENDHDR. Only WIDTH and HEIGHT matter here.
  while (pos < r.size()) {
    std::uint32_t c = 0;
    while (r.u8(pos, &c) && is_space(c)) ++pos;
    if (r.matches(pos, "#", 1)) {
      while (r.u8(pos, &c) && c != '\n') ++pos;
      continue;
    }
    if (r.matches(pos, "ENDHDR", 6)) break;
    if (r.matches(pos, "WIDTH", 5) || r.matches(pos, "HEIGHT", 6)) {
      const bool is_width = r.matches(pos, "WIDTH", 5);
      pos += is_width ? 5 : 6;
      std::int64_t value = 0;
      if (!next_pnm_number(r, &pos, &value)) break;
      (is_width ? width : height) = value;
      continue;
    }
    while (r.u8(pos, &c) && c != '\n') ++pos;  // another keyword: skip its line
  }
  if (width > 0 && height > 0) {
    header.width = width;
    header.height = height;
  }
  return header;
}

std::optional<ImageHeader> sniff_pnm(const ByteReader& r) {
  std::uint32_t p = 0, kind = 0, sep = 0;
  if (!r.u8(0, &p) || p != 'P' || !r.u8(1, &kind) || kind < '1' || kind > '7') return std::nullopt;
  // The magic number must be followed by whitespace (or a comment), which rules out text that merely
  // starts with "P1".."P7".
  if (!r.u8(2, &sep) || !(is_space(sep) || sep == '#')) return std::nullopt;
  if (kind == '7') return sniff_pam(r);
  ImageHeader header = make_header("pnm");
  std::uint64_t pos = 2;
  std::int64_t w = 0, h = 0;
  if (next_pnm_number(r, &pos, &w) && next_pnm_number(r, &pos, &h)) {
    header.width = w;
    header.height = h;
  }
  return header;
}

}  // namespace

std::optional<ImageHeader> sniff_image_header(const std::uint8_t* data, std::size_t size) {
  const ByteReader r(data, size);
  if (auto h = sniff_png(r)) return h;
  if (auto h = sniff_jpeg(r)) return h;
  if (auto h = sniff_gif(r)) return h;
  if (auto h = sniff_webp(r)) return h;
  if (auto h = sniff_tiff(r)) return h;
  if (auto h = sniff_bmp(r)) return h;
  if (auto h = sniff_pnm(r)) return h;
  return std::nullopt;
}

int sniff_jpeg_components(const std::uint8_t* data, std::size_t size) {
  const ByteReader r(data, size);
  if (!r.matches(0, "\xFF\xD8\xFF", 3)) return 0;
  const std::uint64_t sof = find_jpeg_segment(r, false);
  std::uint32_t components = 0;
  if (sof == 0 || !r.u8(sof + 7, &components)) return 0;
  return static_cast<int>(components);
}

bool jpeg_has_end_marker(const std::uint8_t* data, std::size_t size) {
  const ByteReader r(data, size);
  if (!r.matches(0, "\xFF\xD8\xFF", 3)) return false;
  const std::uint64_t sos = find_jpeg_segment(r, true);
  if (sos == 0) return false;
  // Inside entropy-coded data 0xFF is always followed by 0x00 (stuffing) or a marker, so the first
  // FF D9 after the scan header is the end of the image. Thumbnails with their own EOI sit in APP
  // segments before the scan and are not seen here.
  for (std::uint64_t i = sos; i + 1 < r.size(); ++i) {
    std::uint32_t a = 0, b = 0;
    r.u8(i, &a);
    if (a != 0xFF) continue;
    r.u8(i + 1, &b);
    if (b == 0xD9) return true;
  }
  return false;
}

}  // namespace cnnvis
