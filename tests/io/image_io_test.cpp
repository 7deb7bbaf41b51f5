// Loading real and generated images, the error messages for bad files, model-input preparation and
// its inversion, and PNG writing.
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <unistd.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/io/image_io.h"

namespace cnnvis {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;

const char* const kDarknetData = "/usr/share/darknet/data";

// ---- hand-made PNG files (for headers OpenCV will not write: huge sizes, gray + alpha) ----

std::uint32_t crc32(const Bytes& data, std::size_t from, std::size_t to) {
  std::uint32_t crc = 0xFFFFFFFFu;
  for (std::size_t i = from; i < to; ++i) {
    crc ^= data[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

void put_u32be(Bytes& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}

void add_chunk(Bytes& png, const char* type, const Bytes& payload) {
  put_u32be(png, static_cast<std::uint32_t>(payload.size()));
  const std::size_t start = png.size();
  png.insert(png.end(), type, type + 4);
  png.insert(png.end(), payload.begin(), payload.end());
  put_u32be(png, crc32(png, start, png.size()));
}

// zlib stream made of stored (uncompressed) deflate blocks.
Bytes zlib_stored(const Bytes& raw) {
  Bytes out = {0x78, 0x01};
  std::size_t pos = 0;
  do {
    const std::size_t n = std::min<std::size_t>(65535, raw.size() - pos);
    const bool last = pos + n == raw.size();
    out.push_back(last ? 1 : 0);
    out.push_back(n & 0xFF);
    out.push_back((n >> 8) & 0xFF);
    out.push_back(~n & 0xFF);
    out.push_back((~n >> 8) & 0xFF);
    out.insert(out.end(), raw.begin() + pos, raw.begin() + pos + n);
    pos += n;
  } while (pos < raw.size());
  std::uint32_t a = 1, b = 0;
  for (std::uint8_t v : raw) {
    a = (a + v) % 65521;
    b = (b + a) % 65521;
  }
  put_u32be(out, (b << 16) | a);
  return out;
}

// rows: already filtered scanlines (each starting with its filter byte), or empty for a header-only file.
Bytes make_png(std::uint32_t width, std::uint32_t height, std::uint8_t bit_depth, std::uint8_t colour_type,
               const Bytes& rows) {
  Bytes png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  Bytes ihdr;
  put_u32be(ihdr, width);
  put_u32be(ihdr, height);
  ihdr.insert(ihdr.end(), {bit_depth, colour_type, 0, 0, 0});
  add_chunk(png, "IHDR", ihdr);
  if (!rows.empty()) add_chunk(png, "IDAT", zlib_stored(rows));
  add_chunk(png, "IEND", {});
  return png;
}

// ---- fixture with a private temporary directory ----

class ImageIo : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("cnnvis_image_io_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::string write_bytes(const std::string& name, const Bytes& bytes) const {
    const std::string p = path(name);
    std::ofstream out(p, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    return p;
  }
  std::string write_image(const std::string& name, const cv::Mat& bgr, const std::vector<int>& params = {}) const {
    const std::string p = path(name);
    if (!cv::imwrite(p, bgr, params)) return {};
    return p;
  }
  static std::string message_of(const std::string& p, const ImageLimits& limits = {}) {
    try {
      load_image(p, limits);
    } catch (const InputError& e) {
      return e.what();
    }
    return "(no error)";
  }

  fs::path dir_;
};

cv::Mat bgr_to_rgb(const cv::Mat& bgr) {
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return rgb;
}

bool same(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && a.type() == b.type() && cv::norm(a, b, cv::NORM_INF) == 0;
}

cv::Mat pattern(int w, int h) {
  cv::Mat m(h, w, CV_8UC3);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) m.at<cv::Vec3b>(y, x) = cv::Vec3b((x * 7) & 255, (y * 11) & 255, (x * y) & 255);
  }
  return m;
}

// ---- real photos ----

TEST_F(ImageIo, LoadsDarknetDogPhoto) {
  const std::string dog = std::string(kDarknetData) + "/dog.jpg";
  if (!fs::exists(dog)) GTEST_SKIP() << dog << " is missing (install Debian's darknet package)";
  const LoadedImage image = load_image(dog);
  EXPECT_EQ(image.format, "jpeg");
  EXPECT_EQ(image.rgb.cols, 768);
  EXPECT_EQ(image.rgb.rows, 576);
  EXPECT_EQ(image.rgb.type(), CV_8UC3);
  EXPECT_EQ(image.source_channels, 3);
  EXPECT_EQ(image.source_bit_depth, 8);
  EXPECT_EQ(image.path, dog);
  EXPECT_TRUE(same(image.rgb, bgr_to_rgb(cv::imread(dog, cv::IMREAD_COLOR))));
}

TEST_F(ImageIo, LoadsEveryDarknetPhoto) {
  if (!fs::is_directory(kDarknetData)) GTEST_SKIP() << kDarknetData << " is missing (install Debian's darknet package)";
  int loaded = 0;
  for (const auto& entry : fs::directory_iterator(kDarknetData)) {
    if (entry.path().extension() != ".jpg") continue;
    const LoadedImage image = load_image(entry.path().string());
    EXPECT_FALSE(image.rgb.empty()) << entry.path();
    EXPECT_EQ(image.rgb.type(), CV_8UC3);
    ++loaded;
  }
  EXPECT_GT(loaded, 0);
}

TEST_F(ImageIo, TruncatedPhotoIsRefused) {
  const std::string dog = std::string(kDarknetData) + "/dog.jpg";
  if (!fs::exists(dog)) GTEST_SKIP() << dog << " is missing (install Debian's darknet package)";
  std::ifstream in(dog, std::ios::binary);
  Bytes bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  bytes.resize(bytes.size() / 2);
  const std::string p = write_bytes("half.jpg", bytes);
  EXPECT_EQ(message_of(p), p + ": cannot decode jpeg data (corrupt or truncated)");
}

// ---- generated files ----

TEST_F(ImageIo, PngAlphaIsCompositedOverWhite) {
  cv::Mat bgra(1, 4, CV_8UC4);
  bgra.at<cv::Vec4b>(0, 0) = cv::Vec4b(0, 0, 255, 255);   // opaque red
  bgra.at<cv::Vec4b>(0, 1) = cv::Vec4b(0, 255, 0, 0);     // transparent green -> white
  bgra.at<cv::Vec4b>(0, 2) = cv::Vec4b(0, 0, 0, 128);     // half-transparent black -> mid grey
  bgra.at<cv::Vec4b>(0, 3) = cv::Vec4b(255, 0, 0, 255);   // opaque blue
  const LoadedImage image = load_image(write_image("alpha.png", bgra));
  EXPECT_EQ(image.format, "png");
  EXPECT_EQ(image.source_channels, 4);
  ASSERT_EQ(image.rgb.type(), CV_8UC3);
  EXPECT_EQ(image.rgb.at<cv::Vec3b>(0, 0), cv::Vec3b(255, 0, 0));
  EXPECT_EQ(image.rgb.at<cv::Vec3b>(0, 1), cv::Vec3b(255, 255, 255));
  EXPECT_EQ(image.rgb.at<cv::Vec3b>(0, 2), cv::Vec3b(127, 127, 127));
  EXPECT_EQ(image.rgb.at<cv::Vec3b>(0, 3), cv::Vec3b(0, 0, 255));
}

TEST_F(ImageIo, GrayAlphaPngIsCompositedOverWhite) {
  // Colour type 4 (gray + alpha), 8 bits, 3x1: (0, opaque), (0, transparent), (200, opaque).
  const Bytes rows = {0, 0, 255, 0, 0, 200, 255};
  const LoadedImage image = load_image(write_bytes("ga.png", make_png(3, 1, 8, 4, rows)));
  EXPECT_EQ(image.source_channels, 2);
  EXPECT_EQ(image.rgb.at<cv::Vec3b>(0, 0), cv::Vec3b(0, 0, 0));
  EXPECT_EQ(image.rgb.at<cv::Vec3b>(0, 1), cv::Vec3b(255, 255, 255));
  EXPECT_EQ(image.rgb.at<cv::Vec3b>(0, 2), cv::Vec3b(200, 200, 200));
}

TEST_F(ImageIo, SixteenBitPngIsScaledWithRounding) {
  cv::Mat m(1, 6, CV_16UC3);
  const std::uint16_t values[6] = {65535, 257 * 100, 0, 128, 257 * 10 + 128, 257 * 10 + 129};
  const std::uint8_t expected[6] = {255, 100, 0, 0, 10, 11};
  for (int i = 0; i < 6; ++i) m.at<cv::Vec<std::uint16_t, 3>>(0, i) = cv::Vec<std::uint16_t, 3>::all(values[i]);
  const LoadedImage image = load_image(write_image("deep.png", m));
  EXPECT_EQ(image.source_bit_depth, 16);
  EXPECT_EQ(image.source_channels, 3);
  ASSERT_EQ(image.rgb.type(), CV_8UC3);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(image.rgb.at<cv::Vec3b>(0, i)[0], expected[i]) << "value " << values[i];
}

TEST_F(ImageIo, GrayPngBecomesRgb) {
  cv::Mat gray(5, 7, CV_8UC1);
  cv::randu(gray, 0, 256);
  const LoadedImage image = load_image(write_image("gray.png", gray));
  EXPECT_EQ(image.source_channels, 1);
  cv::Mat expected;
  cv::cvtColor(gray, expected, cv::COLOR_GRAY2RGB);
  EXPECT_TRUE(same(image.rgb, expected));
}

TEST_F(ImageIo, GrayJpegReportsOneChannel) {
  cv::Mat gray(16, 16, CV_8UC1, cv::Scalar(90));
  const LoadedImage image = load_image(write_image("gray.jpg", gray));
  EXPECT_EQ(image.source_channels, 1);
  EXPECT_EQ(image.rgb.type(), CV_8UC3);
}

TEST_F(ImageIo, LosslessFormatsRoundTrip) {
  const cv::Mat bgr = pattern(23, 17);
  struct Case {
    const char* name;
    const char* format;
    std::vector<int> params;
  };
  const std::vector<Case> cases = {
      {"a.bmp", "bmp", {}},
      {"a.tiff", "tiff", {}},
      {"a.ppm", "pnm", {}},
      {"a.webp", "webp", {cv::IMWRITE_WEBP_QUALITY, 101}},
  };
  for (const Case& c : cases) {
    const std::string p = write_image(c.name, bgr, c.params);
    if (p.empty()) {
      ADD_FAILURE() << "OpenCV could not write " << c.name;
      continue;
    }
    const LoadedImage image = load_image(p);
    EXPECT_EQ(image.format, c.format);
    EXPECT_TRUE(same(image.rgb, bgr_to_rgb(bgr))) << c.name;
  }
}

TEST_F(ImageIo, JpegExifOrientationIsApplied) {
  // 64x32: left half red, right half blue (RGB). Orientation 6 means "rotate 90 degrees clockwise to
  // display", which puts the left half on top.
  cv::Mat rgb(32, 64, CV_8UC3, cv::Scalar(255, 0, 0));
  rgb(cv::Rect(32, 0, 32, 32)).setTo(cv::Scalar(0, 0, 255));
  Bytes jpeg;
  ASSERT_TRUE(cv::imencode(".jpg", bgr_to_rgb(rgb), jpeg, {cv::IMWRITE_JPEG_QUALITY, 95}));
  const Bytes exif = {0xFF, 0xE1, 0x00, 0x22, 'E', 'x', 'i', 'f', 0, 0,
                      'M', 'M', 0, 42, 0, 0, 0, 8,            // TIFF header, IFD at 8
                      0, 1,                                   // one entry
                      0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0,  // Orientation SHORT = 6
                      0, 0, 0, 0};                            // no next IFD
  jpeg.insert(jpeg.begin() + 2, exif.begin(), exif.end());
  const LoadedImage image = load_image(write_bytes("rotated.jpg", jpeg));
  ASSERT_EQ(image.rgb.cols, 32);
  ASSERT_EQ(image.rgb.rows, 64);
  const cv::Vec3b top = image.rgb.at<cv::Vec3b>(8, 16);
  const cv::Vec3b bottom = image.rgb.at<cv::Vec3b>(56, 16);
  EXPECT_GT(top[0], 200);
  EXPECT_LT(top[2], 60);
  EXPECT_GT(bottom[2], 200);
  EXPECT_LT(bottom[0], 60);
}

TEST_F(ImageIo, TruncatedFilesAreRefused) {
  Bytes jpeg, png;
  ASSERT_TRUE(cv::imencode(".jpg", pattern(64, 48), jpeg));
  ASSERT_TRUE(cv::imencode(".png", pattern(64, 48), png));
  const std::string j = write_bytes("cut.jpg", Bytes(jpeg.begin(), jpeg.begin() + jpeg.size() * 2 / 3));
  const std::string p = write_bytes("cut.png", Bytes(png.begin(), png.begin() + png.size() / 2));
  EXPECT_EQ(message_of(j), j + ": cannot decode jpeg data (corrupt or truncated)");
  EXPECT_EQ(message_of(p), p + ": cannot decode png data (corrupt or truncated)");
  // Cut inside the header: the size is unknown, which is refused the same way.
  const std::string h = write_bytes("header.png", Bytes(png.begin(), png.begin() + 20));
  EXPECT_EQ(message_of(h), h + ": cannot decode png data (corrupt or truncated)");
}

TEST_F(ImageIo, ClearMessagesForFilesThatAreNotImages) {
  const std::string text = path("notes.jpg");
  std::ofstream(text) << "this is a text file with a misleading name\n";
  EXPECT_EQ(message_of(text), text + ": not an image (unrecognised format)");

  const std::string empty = write_bytes("empty.png", {});
  EXPECT_EQ(message_of(empty), empty + ": empty file");

  const std::string missing = path("missing.png");
  EXPECT_EQ(message_of(missing), missing + ": no such file");

  EXPECT_EQ(message_of(dir_.string()), dir_.string() + ": is a directory");
  EXPECT_EQ(message_of("/dev/zero"), "/dev/zero: not a regular file (a device or socket)");

  Bytes gif = {'G', 'I', 'F', '8', '9', 'a', 2, 0, 2, 0, 0, 0, 0, ';'};
  const std::string g = write_bytes("tiny.gif", gif);
  EXPECT_NE(message_of(g).find(g + ": cannot decode gif data"), std::string::npos) << message_of(g);
}

TEST_F(ImageIo, PixelLimitIsCheckedFromTheHeaderBeforeDecoding) {
  // Only a header: decoding would need 10 GB, so reaching the decoder would fail differently.
  const std::string png = write_bytes("bomb.png", make_png(60000, 60000, 8, 2, {}));
  EXPECT_EQ(message_of(png), png + ": image is 60000x60000 = 3600000000 pixels, over the limit of 178956970 "
                                   "(raise it with --max-pixels)");

  Bytes bmp(54, 0);
  bmp[0] = 'B';
  bmp[1] = 'M';
  bmp[14] = 40;
  const std::uint32_t w = 60000, h = static_cast<std::uint32_t>(-60000);
  for (int i = 0; i < 4; ++i) {
    bmp[18 + i] = (w >> (8 * i)) & 0xFF;
    bmp[22 + i] = (h >> (8 * i)) & 0xFF;
  }
  const std::string b = write_bytes("bomb.bmp", bmp);
  EXPECT_EQ(message_of(b), b + ": image is 60000x60000 = 3600000000 pixels, over the limit of 178956970 "
                               "(raise it with --max-pixels)");

  ImageLimits small;
  small.max_pixels = 100;
  const std::string ok = write_image("small.png", pattern(20, 20));
  EXPECT_EQ(message_of(ok, small), ok + ": image is 20x20 = 400 pixels, over the limit of 100 (raise it with --max-pixels)");
  small.max_pixels = 400;
  EXPECT_NO_THROW(load_image(ok, small));
}

TEST_F(ImageIo, FileSizeLimit) {
  const std::string p = write_image("big.png", pattern(40, 40));
  ImageLimits limits;
  limits.max_file_bytes = 100;
  const std::string message = message_of(p, limits);
  EXPECT_EQ(message.rfind(p + ": file is ", 0), 0u) << message;
  EXPECT_NE(message.find("over the limit of 100"), std::string::npos) << message;
}

TEST_F(ImageIo, DecodeFromMemoryNamesTheSource) {
  Bytes png;
  ASSERT_TRUE(cv::imencode(".png", pattern(9, 4), png));
  const LoadedImage image = decode_image(png, "upload#1");
  EXPECT_EQ(image.path, "upload#1");
  EXPECT_EQ(image.rgb.size(), cv::Size(9, 4));
  try {
    decode_image(Bytes{'x', 'y'}, "upload#2");
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_STREQ(e.what(), "upload#2: not an image (unrecognised format)");
  }
  EXPECT_THROW(decode_image({}, "upload#3"), InputError);
}

// ---- model input ----

TEST(FitMode, Parses) {
  EXPECT_EQ(parse_fit_mode("stretch"), FitMode::stretch);
  EXPECT_EQ(parse_fit_mode("center-crop"), FitMode::center_crop);
  EXPECT_EQ(parse_fit_mode("letterbox"), FitMode::letterbox);
  try {
    parse_fit_mode("zoom");
    FAIL() << "no error";
  } catch (const UsageError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("zoom"), std::string::npos);
    EXPECT_NE(message.find("stretch, center-crop, letterbox"), std::string::npos);
  }
}

TEST(PrepareModelInput, SizesAndRegions) {
  const cv::Mat rgb = pattern(768, 576);
  InputRegion region;

  cv::Mat input = prepare_model_input(rgb, 224, 224, FitMode::stretch, &region);
  EXPECT_EQ(input.type(), CV_32FC3);
  EXPECT_EQ(input.size(), cv::Size(224, 224));
  EXPECT_EQ(region.source_rect, cv::Rect2d(0, 0, 768, 576));
  EXPECT_EQ(region.input_rect, cv::Rect2d(0, 0, 224, 224));
  double lo = 0, hi = 0;
  cv::minMaxLoc(input.reshape(1), &lo, &hi);
  EXPECT_GE(lo, 0.0);
  EXPECT_LE(hi, 1.0);

  input = prepare_model_input(rgb, 224, 224, FitMode::center_crop, &region);
  EXPECT_EQ(input.size(), cv::Size(224, 224));
  // Resized to 298x224 as torchvision does (int(224 * 768 / 576)), then the centre cut at x = 37.
  EXPECT_NEAR(region.source_rect.x, 37 * 768.0 / 298, 1e-9);
  EXPECT_NEAR(region.source_rect.y, 0, 1e-9);
  EXPECT_NEAR(region.source_rect.width, 224 * 768.0 / 298, 1e-9);
  EXPECT_NEAR(region.source_rect.height, 576, 1e-9);
  EXPECT_NEAR(region.source_rect.x + region.source_rect.width / 2, 384, 2);
  EXPECT_EQ(region.input_rect, cv::Rect2d(0, 0, 224, 224));

  input = prepare_model_input(rgb, 224, 224, FitMode::letterbox, &region);
  EXPECT_EQ(input.size(), cv::Size(224, 224));
  EXPECT_EQ(region.source_rect, cv::Rect2d(0, 0, 768, 576));
  EXPECT_EQ(region.input_rect, cv::Rect2d(0, 28, 224, 168));
  EXPECT_EQ(input.at<cv::Vec3f>(0, 100), cv::Vec3f(0.5f, 0.5f, 0.5f));
  EXPECT_EQ(input.at<cv::Vec3f>(223, 0), cv::Vec3f(0.5f, 0.5f, 0.5f));

  // Non-square target, and enlarging a small image.
  input = prepare_model_input(pattern(10, 20), 64, 32, FitMode::center_crop, &region);
  EXPECT_EQ(input.size(), cv::Size(64, 32));
  EXPECT_NEAR(region.source_rect.width, 10, 1e-9);
  EXPECT_NEAR(region.source_rect.height, 5, 1e-9);

  EXPECT_THROW(prepare_model_input(rgb, 0, 224, FitMode::stretch), UsageError);
  EXPECT_THROW(prepare_model_input(cv::Mat(), 224, 224, FitMode::stretch), UsageError);
}

TEST(PrepareModelInput, StretchMatchesPlainResize) {
  const cv::Mat rgb = pattern(100, 80);
  const cv::Mat input = prepare_model_input(rgb, 50, 40, FitMode::stretch);
  cv::Mat expected8, expected;
  cv::resize(rgb, expected8, cv::Size(50, 40), 0, 0, cv::INTER_AREA);
  expected8.convertTo(expected, CV_32F, 1.0 / 255.0);
  EXPECT_LT(cv::norm(input, expected, cv::NORM_INF), 1e-6);
}

// A map computed on the model input, mapped back, should line up with the source: use the input's
// own red channel (a horizontal ramp) as the "map" and compare with the source ramp.
TEST(MapToSource, InvertsEveryFitMode) {
  const int sw = 300, sh = 200;
  cv::Mat rgb(sh, sw, CV_8UC3);
  for (int y = 0; y < sh; ++y) {
    for (int x = 0; x < sw; ++x) {
      rgb.at<cv::Vec3b>(y, x) = cv::Vec3b(static_cast<std::uint8_t>(std::lround(x * 255.0 / (sw - 1))),
                                          static_cast<std::uint8_t>(std::lround(y * 255.0 / (sh - 1))), 0);
    }
  }
  for (FitMode fit : {FitMode::stretch, FitMode::center_crop, FitMode::letterbox}) {
    InputRegion region;
    const cv::Mat input = prepare_model_input(rgb, 64, 64, fit, &region);
    cv::Mat channels[3];
    cv::split(input, channels);
    for (int c = 0; c < 2; ++c) {
      const cv::Mat back = map_to_source(channels[c], region, cv::Size(sw, sh));
      ASSERT_EQ(back.size(), cv::Size(sw, sh));
      ASSERT_EQ(back.type(), CV_32FC1);
      const int x0 = static_cast<int>(std::ceil(region.source_rect.x));
      const int x1 = static_cast<int>(std::floor(region.source_rect.x + region.source_rect.width));
      double worst = 0;
      // Skip a 4-pixel border: both resizes replicate the edge there.
      for (int y = 4; y < sh - 4; ++y) {
        for (int x = x0 + 4; x < x1 - 4; ++x) {
          const double expected = (c == 0 ? rgb.at<cv::Vec3b>(y, x)[0] : rgb.at<cv::Vec3b>(y, x)[1]) / 255.0;
          worst = std::max(worst, std::abs(back.at<float>(y, x) - expected));
        }
      }
      EXPECT_LT(worst, 0.03) << "fit " << static_cast<int>(fit) << " channel " << c;
      if (fit == FitMode::center_crop) {
        // Outside the crop there is nothing to show.
        EXPECT_EQ(back.at<float>(100, 10), 0.0f);
        EXPECT_EQ(back.at<float>(100, 290), 0.0f);
      }
    }
  }
}

// ---- writing ----

TEST_F(ImageIo, WritePngRoundTrips) {
  const cv::Mat rgb = pattern(13, 9);
  const std::string p = path("out.png");
  write_png(p, rgb);
  EXPECT_TRUE(same(bgr_to_rgb(cv::imread(p, cv::IMREAD_UNCHANGED)), rgb));

  cv::Mat gray(4, 6, CV_8UC1, cv::Scalar(77));
  write_png(path("gray.png"), gray);
  EXPECT_TRUE(same(cv::imread(path("gray.png"), cv::IMREAD_UNCHANGED), gray));
}

TEST_F(ImageIo, WritePng16ClipsAndScales) {
  cv::Mat map(1, 5, CV_32FC1);
  map.at<float>(0, 0) = 0.0f;
  map.at<float>(0, 1) = 1.0f;
  map.at<float>(0, 2) = 0.5f;
  map.at<float>(0, 3) = -2.0f;
  map.at<float>(0, 4) = std::nanf("");
  const std::string p = path("map16.png");
  write_png16(p, map);
  const cv::Mat back = cv::imread(p, cv::IMREAD_UNCHANGED);
  ASSERT_EQ(back.type(), CV_16UC1);
  EXPECT_EQ(back.at<std::uint16_t>(0, 0), 0);
  EXPECT_EQ(back.at<std::uint16_t>(0, 1), 65535);
  EXPECT_NEAR(back.at<std::uint16_t>(0, 2), 32768, 1);
  EXPECT_EQ(back.at<std::uint16_t>(0, 3), 0);
  EXPECT_EQ(back.at<std::uint16_t>(0, 4), 0);
}

TEST_F(ImageIo, WriteErrorsNameThePath) {
  const std::string p = path("no/such/dir/out.png");
  try {
    write_png(p, pattern(4, 4));
    FAIL() << "no error";
  } catch (const OutputError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(p + ": cannot write PNG", 0), 0u) << e.what();
  }
  EXPECT_THROW(write_png16(p, cv::Mat(2, 2, CV_32FC1, cv::Scalar(0.5))), OutputError);
  EXPECT_THROW(write_png(path("bad.png"), cv::Mat()), OutputError);
}

}  // namespace
}  // namespace cnnvis
