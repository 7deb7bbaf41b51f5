// GIF89a encoder: fixed palettes (the diverging ramp for activation movies, a colour cube for photo-like
// frames with ordered dithering), LZW, frames appended to the file as they come.
#include "cnnvis/io/gif.h"

#include <algorithm>
#include <cstring>
#include <fstream>

#include "cnnvis/core/errors.h"
#include "cnnvis/io/colormap.h"

namespace cnnvis {

namespace {

constexpr int kRampEntries = 129;  // t = i / 128: index 64 is t = 0.5, exactly white

// Nearest palette entry for every colour quantised to 6 bits per channel.
std::vector<std::uint8_t> build_lookup(const std::vector<cv::Vec3b>& palette) {
  {
    std::vector<std::uint8_t> table(1u << 18);
    for (int r = 0; r < 64; ++r) {
      for (int g = 0; g < 64; ++g) {
        for (int b = 0; b < 64; ++b) {
          const int cr = r * 4 + 2, cg = g * 4 + 2, cb = b * 4 + 2;  // bin centre
          int best = 0, best_d = 1 << 30;
          for (std::size_t i = 0; i < palette.size(); ++i) {
            const int dr = cr - palette[i][0], dg = cg - palette[i][1], db = cb - palette[i][2];
            const int d = dr * dr + dg * dg + db * db;
            if (d < best_d) {
              best_d = d;
              best = static_cast<int>(i);
            }
          }
          table[(static_cast<std::size_t>(r) << 12) | (static_cast<std::size_t>(g) << 6) | static_cast<std::size_t>(b)] =
              static_cast<std::uint8_t>(best);
        }
      }
    }
    return table;
  }
}

const std::vector<std::uint8_t>& palette_lookup() {
  static const std::vector<std::uint8_t> lut = build_lookup(movie_palette());
  return lut;
}

const std::vector<std::uint8_t>& image_palette_lookup() {
  static const std::vector<std::uint8_t> lut = build_lookup(image_palette());
  return lut;
}

// Exact matches first: the ramp's colours (white above all) must survive quantisation unchanged, and
// the 6-bit bins alone could map a ramp colour to a neighbouring entry.
struct ExactColours {
  std::vector<std::pair<std::uint32_t, std::uint8_t>> sorted;  // packed RGB -> index
  ExactColours() {
    const auto& palette = movie_palette();
    for (std::size_t i = 0; i < palette.size(); ++i) {
      const std::uint32_t key = (static_cast<std::uint32_t>(palette[i][0]) << 16) |
                                (static_cast<std::uint32_t>(palette[i][1]) << 8) | palette[i][2];
      sorted.emplace_back(key, static_cast<std::uint8_t>(i));
    }
    std::stable_sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  }
  int find(std::uint32_t key) const {
    auto it = std::lower_bound(sorted.begin(), sorted.end(), key,
                               [](const auto& entry, std::uint32_t k) { return entry.first < k; });
    return it != sorted.end() && it->first == key ? it->second : -1;
  }
};

void put_u16(std::ofstream& out, int value) {
  const char bytes[2] = {static_cast<char>(value & 0xFF), static_cast<char>((value >> 8) & 0xFF)};
  out.write(bytes, 2);
}

class BitWriter {
 public:
  void write(int code, int bits) {
    buffer_ |= static_cast<std::uint32_t>(code) << count_;
    count_ += bits;
    while (count_ >= 8) {
      bytes_.push_back(static_cast<std::uint8_t>(buffer_ & 0xFF));
      buffer_ >>= 8;
      count_ -= 8;
    }
  }
  std::vector<std::uint8_t> finish() {
    if (count_ > 0) bytes_.push_back(static_cast<std::uint8_t>(buffer_ & 0xFF));
    buffer_ = 0;
    count_ = 0;
    return std::move(bytes_);
  }

 private:
  std::vector<std::uint8_t> bytes_;
  std::uint32_t buffer_ = 0;
  int count_ = 0;
};

}  // namespace

const std::vector<cv::Vec3b>& movie_palette() {
  static const std::vector<cv::Vec3b> palette = [] {
    std::vector<cv::Vec3b> p;
    for (int i = 0; i < kRampEntries; ++i) {
      p.push_back(colormap_rgb(Colormap::diverging, static_cast<float>(i) / (kRampEntries - 1)));
    }
    for (int r = 0; r < 5; ++r)
      for (int g = 0; g < 5; ++g)
        for (int b = 0; b < 5; ++b)
          p.emplace_back(static_cast<uchar>(r * 255 / 4), static_cast<uchar>(g * 255 / 4), static_cast<uchar>(b * 255 / 4));
    p.emplace_back(96, 96, 96);
    p.emplace_back(160, 160, 160);
    return p;
  }();
  return palette;
}

const std::vector<cv::Vec3b>& image_palette() {
  static const std::vector<cv::Vec3b> palette = [] {
    std::vector<cv::Vec3b> p;
    for (int r = 0; r < 6; ++r)
      for (int g = 0; g < 7; ++g)
        for (int b = 0; b < 6; ++b)
          p.emplace_back(static_cast<uchar>(r * 255 / 5), static_cast<uchar>(g * 255 / 6), static_cast<uchar>(b * 255 / 5));
    for (int v : {64, 128, 160, 224}) p.emplace_back(static_cast<uchar>(v), static_cast<uchar>(v), static_cast<uchar>(v));
    return p;
  }();
  return palette;
}

std::vector<std::uint8_t> gif_lzw_encode(const std::vector<std::uint8_t>& indices) {
  constexpr int kMinCodeSize = 8;
  constexpr int kClear = 1 << kMinCodeSize, kEnd = kClear + 1, kMaxCode = 4095;
  // Dictionary of (prefix code, next byte) -> code, dense: 4096 x 256 entries, -1 = absent.
  std::vector<std::int16_t> dictionary(static_cast<std::size_t>(kMaxCode + 1) * 256, -1);
  BitWriter bits;
  int code_size = kMinCodeSize + 1;
  int last_code = kEnd;  // the last code assigned
  bits.write(kClear, code_size);
  if (!indices.empty()) {
    int prefix = indices[0];
    for (std::size_t i = 1; i < indices.size(); ++i) {
      const int k = indices[i];
      std::int16_t& slot = dictionary[static_cast<std::size_t>(prefix) * 256 + static_cast<std::size_t>(k)];
      if (slot >= 0) {
        prefix = slot;
        continue;
      }
      bits.write(prefix, code_size);
      slot = static_cast<std::int16_t>(++last_code);
      // The decoder adds its entries one code later than the encoder, so it widens its codes when its
      // next free code reaches 2^size: for the encoder that is when the code just assigned equals 2^size.
      if (last_code >= (1 << code_size) && code_size < 12) ++code_size;
      if (last_code == kMaxCode) {
        bits.write(kClear, code_size);
        std::fill(dictionary.begin(), dictionary.end(), std::int16_t{-1});
        code_size = kMinCodeSize + 1;
        last_code = kEnd;
      }
      prefix = k;
    }
    bits.write(prefix, code_size);
    // The decoder still adds one entry on reading that last code; if that fills the current width it
    // reads the end code one bit wider.
    if (last_code > kEnd && last_code + 1 >= (1 << code_size) && code_size < 12) ++code_size;
  }
  bits.write(kEnd, code_size);
  const std::vector<std::uint8_t> packed = bits.finish();

  std::vector<std::uint8_t> out;
  out.reserve(packed.size() + packed.size() / 255 + 3);
  out.push_back(static_cast<std::uint8_t>(kMinCodeSize));
  for (std::size_t pos = 0; pos < packed.size(); pos += 255) {
    const std::size_t n = std::min<std::size_t>(255, packed.size() - pos);
    out.push_back(static_cast<std::uint8_t>(n));
    out.insert(out.end(), packed.begin() + static_cast<std::ptrdiff_t>(pos),
               packed.begin() + static_cast<std::ptrdiff_t>(pos + n));
  }
  out.push_back(0);
  return out;
}

GifWriter::GifWriter(const std::string& path, int width, int height, int delay_cs)
    : GifWriter(path, width, height, delay_cs, false) {}

GifWriter::GifWriter(const std::string& path, int width, int height, int delay_cs, bool photo_frames)
    : path_(path), width_(width), height_(height), delay_cs_(delay_cs), photo_(photo_frames) {
  if (width < 1 || height < 1 || width > 65535 || height > 65535)
    throw UsageError(path + ": GIF size " + std::to_string(width) + "x" + std::to_string(height) + " is out of range");
  out_.open(path, std::ios::binary | std::ios::trunc);
  if (!out_) throw OutputError(path + ": cannot open for writing");
  out_.write("GIF89a", 6);
  put_u16(out_, width);
  put_u16(out_, height);
  // Global colour table of 2^(7+1) entries, 8 bits per primary.
  const char screen[3] = {static_cast<char>(0xF7), 0, 0};
  out_.write(screen, 3);
  for (const cv::Vec3b& c : photo_ ? image_palette() : movie_palette()) {
    const char rgb[3] = {static_cast<char>(c[0]), static_cast<char>(c[1]), static_cast<char>(c[2])};
    out_.write(rgb, 3);
  }
  // NETSCAPE2.0 application extension: loop forever.
  const char loop[19] = {0x21, static_cast<char>(0xFF), 0x0B, 'N', 'E', 'T', 'S', 'C', 'A', 'P',
                         'E', '2', '.', '0', 0x03, 0x01, 0x00, 0x00, 0x00};
  out_.write(loop, sizeof(loop));
  if (!out_) throw OutputError(path + ": write failed");
}

GifWriter::~GifWriter() {
  try {
    close();
  } catch (...) {
    // A destructor cannot report; close() is called explicitly on the normal path.
  }
}

void GifWriter::add_frame(const cv::Mat& frame_rgb) {
  if (closed_) throw UsageError(path_ + ": GIF already closed");
  if (frame_rgb.type() != CV_8UC3 || frame_rgb.cols != width_ || frame_rgb.rows != height_)
    throw UsageError(path_ + ": GIF frames must be " + std::to_string(width_) + "x" + std::to_string(height_) +
                     " 8-bit RGB");
  static const ExactColours exact;
  const auto& lut = palette_lookup();
  std::vector<std::uint8_t> indices(static_cast<std::size_t>(width_) * height_);
  std::size_t n = 0;
  if (photo_) {
    // Ordered dithering: a fixed threshold per pixel position, about one cube step wide.
    static const int bayer[4][4] = {{0, 8, 2, 10}, {12, 4, 14, 6}, {3, 11, 1, 9}, {15, 7, 13, 5}};
    const auto& photo_lut = image_palette_lookup();
    for (int y = 0; y < height_; ++y) {
      const auto* row = frame_rgb.ptr<cv::Vec3b>(y);
      for (int x = 0; x < width_; ++x) {
        const int offset = (bayer[y & 3][x & 3] * 2 - 15) * 45 / 32;  // -21..21
        const auto q = [&](int v) { return static_cast<std::size_t>(std::clamp(v + offset, 0, 255) >> 2); };
        indices[n++] = photo_lut[(q(row[x][0]) << 12) | (q(row[x][1]) << 6) | q(row[x][2])];
      }
    }
  }
  for (int y = 0; y < height_ && !photo_; ++y) {
    const auto* row = frame_rgb.ptr<cv::Vec3b>(y);
    for (int x = 0; x < width_; ++x) {
      const cv::Vec3b& p = row[x];
      const std::uint32_t key = (static_cast<std::uint32_t>(p[0]) << 16) | (static_cast<std::uint32_t>(p[1]) << 8) | p[2];
      const int hit = exact.find(key);
      indices[n++] = hit >= 0 ? static_cast<std::uint8_t>(hit)
                              : lut[(static_cast<std::size_t>(p[0] >> 2) << 12) |
                                    (static_cast<std::size_t>(p[1] >> 2) << 6) | static_cast<std::size_t>(p[2] >> 2)];
    }
  }
  // Graphic control extension: no disposal (each frame covers the whole screen), delay, no transparency.
  const char gce[8] = {0x21, static_cast<char>(0xF9), 0x04, 0x04, static_cast<char>(delay_cs_ & 0xFF),
                       static_cast<char>((delay_cs_ >> 8) & 0xFF), 0x00, 0x00};
  out_.write(gce, sizeof(gce));
  out_.put(0x2C);
  put_u16(out_, 0);
  put_u16(out_, 0);
  put_u16(out_, width_);
  put_u16(out_, height_);
  out_.put(0x00);  // no local colour table, not interlaced
  const std::vector<std::uint8_t> data = gif_lzw_encode(indices);
  out_.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  if (!out_) throw OutputError(path_ + ": write failed");
  ++frames_;
}

void GifWriter::close() {
  if (closed_) return;
  closed_ = true;
  out_.put(0x3B);
  out_.close();
  if (!out_) throw OutputError(path_ + ": write failed");
}

int count_gif_frames(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return -1;
  std::vector<std::uint8_t> d((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (d.size() < 13 || std::memcmp(d.data(), "GIF89a", 6) != 0) return -1;
  std::size_t pos = 13;
  if (d[10] & 0x80) pos += 3u * (1u << ((d[10] & 0x07) + 1));
  // Skips data sub-blocks up to and including the terminator; false when the file ends first.
  const auto skip_blocks = [&](std::size_t& p) {
    while (p < d.size()) {
      const std::size_t n = d[p++];
      if (n == 0) return true;
      p += n;
    }
    return false;
  };
  int images = 0, controls = 0;
  while (pos < d.size()) {
    const std::uint8_t tag = d[pos++];
    if (tag == 0x3B) return controls == images ? images : -1;
    if (tag == 0x21) {
      if (pos >= d.size()) return -1;
      if (d[pos] == 0xF9) ++controls;
      ++pos;
      if (!skip_blocks(pos)) return -1;
    } else if (tag == 0x2C) {
      if (pos + 9 > d.size()) return -1;
      const std::uint8_t packed = d[pos + 8];
      pos += 9;
      if (packed & 0x80) pos += 3u * (1u << ((packed & 0x07) + 1));
      if (pos >= d.size()) return -1;
      ++pos;  // LZW minimum code size
      if (!skip_blocks(pos)) return -1;
      ++images;
    } else {
      return -1;
    }
  }
  return -1;  // no trailer
}

}  // namespace cnnvis
