// Header sniffing: sizes from real encoders and hand-made headers, and robustness against cut-short,
// corrupted and random input (the sniffer sees untrusted bytes before any decoder does).
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "cnnvis/io/image_io.h"

namespace cnnvis {
namespace {

using Bytes = std::vector<std::uint8_t>;
using namespace std::string_literals;

Bytes bytes_of(const std::string& s) { return Bytes(s.begin(), s.end()); }

std::optional<ImageHeader> sniff(const Bytes& b) { return sniff_image_header(b.data(), b.size()); }

cv::Mat test_image(int w, int h, int type = CV_8UC3) {
  cv::Mat m(h, w, type);
  cv::randu(m, 0, 255);
  return m;
}

Bytes encode(const std::string& ext, const cv::Mat& image, const std::vector<int>& params = {}) {
  Bytes out;
  if (!cv::imencode(ext, image, out, params)) return {};
  return out;
}

void put_u16le(Bytes& b, std::size_t at, std::uint32_t v) {
  b[at] = v & 0xFF;
  b[at + 1] = (v >> 8) & 0xFF;
}
void put_u32le(Bytes& b, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = (v >> (8 * i)) & 0xFF;
}

void expect_header(const Bytes& b, const std::string& format, std::int64_t w, std::int64_t h) {
  const auto header = sniff(b);
  ASSERT_TRUE(header.has_value()) << format;
  EXPECT_EQ(header->format, format);
  EXPECT_EQ(header->width, w) << format;
  EXPECT_EQ(header->height, h) << format;
}

TEST(ImageSniff, SizesFromOpenCvEncoders) {
  const cv::Mat image = test_image(37, 23);
  expect_header(encode(".png", image), "png", 37, 23);
  expect_header(encode(".jpg", image), "jpeg", 37, 23);
  expect_header(encode(".bmp", image), "bmp", 37, 23);
  expect_header(encode(".tiff", image), "tiff", 37, 23);
  expect_header(encode(".ppm", image), "pnm", 37, 23);
  expect_header(encode(".pgm", test_image(37, 23, CV_8UC1)), "pnm", 37, 23);
  expect_header(encode(".pbm", test_image(37, 23, CV_8UC1)), "pnm", 37, 23);
  const Bytes lossy = encode(".webp", image, {cv::IMWRITE_WEBP_QUALITY, 80});
  const Bytes lossless = encode(".webp", image, {cv::IMWRITE_WEBP_QUALITY, 101});
  if (lossy.empty()) GTEST_SKIP() << "this OpenCV cannot encode WebP";
  expect_header(lossy, "webp", 37, 23);
  expect_header(lossless, "webp", 37, 23);
  EXPECT_EQ(std::string(lossy.begin() + 12, lossy.begin() + 16), "VP8 ");
  EXPECT_EQ(std::string(lossless.begin() + 12, lossless.begin() + 16), "VP8L");
}

TEST(ImageSniff, LargeTiffUsesLongTags) {
  // Widths over 65535 need LONG tags; OpenCV picks the type itself, so just check a wide strip.
  expect_header(encode(".tiff", test_image(70000, 1, CV_8UC1)), "tiff", 70000, 1);
}

TEST(ImageSniff, JpegWithSegmentsAndFillBytesBeforeFrame) {
  Bytes b = {0xFF, 0xD8};
  // APP0 with a 16-byte payload, some fill bytes, a DHT-like segment (C4 is not a frame header), COM.
  b.insert(b.end(), {0xFF, 0xE0, 0x00, 0x10});
  b.insert(b.end(), 14, 0x41);
  b.insert(b.end(), {0xFF, 0xFF, 0xFF, 0xC4, 0x00, 0x04, 0x12, 0x34});
  b.insert(b.end(), {0xFF, 0xFE, 0x00, 0x05, 'h', 'i', '!'});
  // SOF2 (progressive): length 11, precision 8, height 0x0123, width 0x0456, 1 component.
  b.insert(b.end(), {0xFF, 0xC2, 0x00, 0x0B, 0x08, 0x01, 0x23, 0x04, 0x56, 0x01, 0x01, 0x11, 0x00});
  expect_header(b, "jpeg", 0x456, 0x123);
  EXPECT_EQ(sniff_jpeg_components(b.data(), b.size()), 1);
  EXPECT_FALSE(jpeg_has_end_marker(b.data(), b.size()));  // no scan at all
}

TEST(ImageSniff, JpegScanBeforeFrameOrCutShortHasNoSize) {
  const Bytes scan_first = {0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02, 0xFF, 0xD9};
  expect_header(scan_first, "jpeg", 0, 0);
  const Bytes cut = {0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08, 0x01};
  expect_header(cut, "jpeg", 0, 0);
  // A segment length pointing far past the end.
  const Bytes runaway = {0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF, 0x00};
  expect_header(runaway, "jpeg", 0, 0);
}

TEST(ImageSniff, JpegEndMarker) {
  const Bytes full = encode(".jpg", test_image(40, 30));
  ASSERT_FALSE(full.empty());
  EXPECT_TRUE(jpeg_has_end_marker(full.data(), full.size()));
  EXPECT_FALSE(jpeg_has_end_marker(full.data(), full.size() - 2));
  EXPECT_FALSE(jpeg_has_end_marker(full.data(), full.size() / 2));
  EXPECT_EQ(sniff_jpeg_components(full.data(), full.size()), 3);
  const Bytes gray = encode(".jpg", test_image(40, 30, CV_8UC1));
  EXPECT_EQ(sniff_jpeg_components(gray.data(), gray.size()), 1);
}

TEST(ImageSniff, BmpHeaders) {
  // BITMAPINFOHEADER with a negative (top-down) height.
  Bytes info(54, 0);
  info[0] = 'B';
  info[1] = 'M';
  put_u32le(info, 14, 40);
  put_u32le(info, 18, 300);
  put_u32le(info, 22, static_cast<std::uint32_t>(-200));
  expect_header(info, "bmp", 300, 200);
  // BITMAPCOREHEADER: 16-bit sizes.
  Bytes core(26, 0);
  core[0] = 'B';
  core[1] = 'M';
  put_u32le(core, 14, 12);
  put_u16le(core, 18, 640);
  put_u16le(core, 20, 480);
  expect_header(core, "bmp", 640, 480);
  // INT32_MIN height must not overflow when made positive.
  put_u32le(info, 22, 0x80000000u);
  expect_header(info, "bmp", 300, 2147483648LL);
  // "BM" followed by text is not a bitmap.
  EXPECT_FALSE(sniff(bytes_of("BMW is a car brand, not a bitmap header at all")).has_value());
}

TEST(ImageSniff, Gif) {
  Bytes gif = bytes_of("GIF89a");
  gif.insert(gif.end(), {0x40, 0x01, 0xF0, 0x00, 0x00, 0x00, 0x00});
  expect_header(gif, "gif", 320, 240);
  expect_header(bytes_of("GIF87a\x01"), "gif", 0, 0);
}

TEST(ImageSniff, WebpExtendedAndHandMade) {
  Bytes vp8x = bytes_of("RIFF\0\0\0\0WEBPVP8X"s);
  vp8x.resize(30, 0);
  put_u32le(vp8x, 16, 10);
  // canvas width-1 = 999 (24-bit), height-1 = 0x012345
  vp8x[24] = 999 & 0xFF;
  vp8x[25] = 999 >> 8;
  vp8x[26] = 0;
  vp8x[27] = 0x45;
  vp8x[28] = 0x23;
  vp8x[29] = 0x01;
  expect_header(vp8x, "webp", 1000, 0x012346);

  Bytes vp8l = bytes_of("RIFF\0\0\0\0WEBPVP8L"s);
  vp8l.resize(25, 0);
  vp8l[20] = 0x2F;
  const std::uint32_t bits = (16383u) | (1u << 14);  // width 16384, height 2
  put_u32le(vp8l, 21, bits);
  expect_header(vp8l, "webp", 16384, 2);
  vp8l[20] = 0x2E;  // wrong signature: format known, size not
  expect_header(vp8l, "webp", 0, 0);

  Bytes vp8 = bytes_of("RIFF\0\0\0\0WEBPVP8 "s);
  vp8.resize(30, 0);
  vp8[23] = 0x9D;
  vp8[24] = 0x01;
  vp8[25] = 0x2A;
  put_u16le(vp8, 26, 0xC000 | 513);  // top two bits are scaling, not size
  put_u16le(vp8, 28, 257);
  expect_header(vp8, "webp", 513, 257);
}

TEST(ImageSniff, TiffBothByteOrders) {
  // Big-endian, IFD at 8, two entries: width SHORT 0x0102, height LONG 0x00030004.
  Bytes mm = {'M', 'M', 0, 42, 0, 0, 0, 8, 0, 2,
              1, 0, 0, 3, 0, 0, 0, 1, 0x01, 0x02, 0, 0,
              1, 1, 0, 4, 0, 0, 0, 1, 0x00, 0x03, 0x00, 0x04,
              0, 0, 0, 0};
  expect_header(mm, "tiff", 0x0102, 0x30004);
  Bytes ii = {'I', 'I', 42, 0, 8, 0, 0, 0, 2, 0,
              0, 1, 3, 0, 1, 0, 0, 0, 0x02, 0x01, 0, 0,
              1, 1, 3, 0, 1, 0, 0, 0, 0x20, 0x00, 0, 0,
              0, 0, 0, 0};
  expect_header(ii, "tiff", 0x0102, 0x20);
  // Entry count far larger than the data, and an IFD offset past the end.
  Bytes lying = ii;
  lying[8] = 0xFF;
  lying[9] = 0xFF;
  expect_header(lying, "tiff", 0x0102, 0x20);
  Bytes far = ii;
  put_u32le(far, 4, 0xFFFFFFF0u);
  expect_header(far, "tiff", 0, 0);
  EXPECT_FALSE(sniff(bytes_of("II hope this text is not taken for an image")).has_value());
}

TEST(ImageSniff, PnmWithComments) {
  expect_header(bytes_of("P6\n# made by hand\n  640 # width\n#height next\n480\n255\n"), "pnm", 640, 480);
  expect_header(bytes_of("P1 3 2\n0 1 0\n1 0 1\n"), "pnm", 3, 2);
  expect_header(bytes_of("P5\n12"), "pnm", 0, 0);
  expect_header(bytes_of("P7\nWIDTH 4\nHEIGHT 5\nDEPTH 3\nMAXVAL 255\nTUPLTYPE RGB\nENDHDR\n"), "pnm", 4, 5);
  EXPECT_FALSE(sniff(bytes_of("P1nk Floyd")).has_value());
  expect_header(bytes_of("P2 99999999999999999999999999 1\n"), "pnm", std::int64_t(1) << 40, 1);
}

TEST(ImageSniff, NotImages) {
  EXPECT_FALSE(sniff_image_header(nullptr, 0).has_value());
  EXPECT_FALSE(sniff_image_header(nullptr, 100).has_value());
  EXPECT_FALSE(sniff(Bytes{}).has_value());
  EXPECT_FALSE(sniff(bytes_of("hello, world\n")).has_value());
  EXPECT_FALSE(sniff(bytes_of("{\"json\": true}")).has_value());
  EXPECT_FALSE(sniff(bytes_of("RIFF\0\0\0\0WAVEfmt "s)).has_value());
}

TEST(ImageSniff, EveryPrefixIsSafeAndNeverInventsASize) {
  const cv::Mat image = test_image(33, 17);
  std::vector<Bytes> samples = {encode(".png", image), encode(".jpg", image), encode(".bmp", image),
                                encode(".tiff", image), encode(".ppm", image),
                                encode(".webp", image, {cv::IMWRITE_WEBP_QUALITY, 101})};
  for (const Bytes& full : samples) {
    if (full.empty()) continue;
    for (std::size_t n = 0; n <= std::min<std::size_t>(full.size(), 4096); ++n) {
      // A copy of exactly n bytes, so that reading past it would be visible to sanitizers.
      const Bytes prefix(full.begin(), full.begin() + n);
      const auto header = sniff(prefix);
      if (header && header->width != 0) {
        EXPECT_EQ(header->width, 33);
        EXPECT_EQ(header->height, 17);
      }
    }
  }
}

TEST(ImageSniff, RandomAndMutatedInputDoesNotCrash) {
  std::mt19937 rng(1234);
  const cv::Mat image = test_image(21, 13);
  std::vector<Bytes> seeds = {encode(".png", image), encode(".jpg", image), encode(".bmp", image),
                              encode(".tiff", image), encode(".ppm", image),
                              encode(".webp", image, {cv::IMWRITE_WEBP_QUALITY, 90}),
                              bytes_of("GIF89a\x10\x00\x10\x00"s), bytes_of("P7\nWIDTH 3\nHEIGHT 3\nENDHDR\n"),
                              bytes_of("MM\0*\0\0\0\x08\0\x01"s), bytes_of("RIFF\0\0\0\0WEBPVP8X"s)};
  std::size_t recognised = 0;
  for (int iteration = 0; iteration < 20000; ++iteration) {
    Bytes b = seeds[iteration % seeds.size()];
    if (b.empty()) continue;
    const std::size_t keep = std::uniform_int_distribution<std::size_t>(0, std::min<std::size_t>(b.size(), 200))(rng);
    b.resize(keep);
    const int flips = std::uniform_int_distribution<int>(0, 8)(rng);
    for (int f = 0; f < flips && !b.empty(); ++f) {
      b[std::uniform_int_distribution<std::size_t>(0, b.size() - 1)(rng)] =
          static_cast<std::uint8_t>(std::uniform_int_distribution<int>(0, 255)(rng));
    }
    const Bytes exact(b.begin(), b.end());
    const auto header = sniff(exact);
    if (header) {
      ++recognised;
      EXPECT_GE(header->width, 0);
      EXPECT_GE(header->height, 0);
    }
    (void)sniff_jpeg_components(exact.data(), exact.size());
    (void)jpeg_has_end_marker(exact.data(), exact.size());
  }
  EXPECT_GT(recognised, 0u);
}

}  // namespace
}  // namespace cnnvis
