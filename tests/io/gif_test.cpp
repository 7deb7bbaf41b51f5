#include "cnnvis/io/gif.h"

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include "cnnvis/io/colormap.h"
#include "support/temp_dir.h"

namespace cnnvis {
namespace {

namespace fs = std::filesystem;

// Every directory of this file's tests is named after it.
class TempDir : public testing::TempDir {
 public:
  TempDir() : testing::TempDir("cnnvis_gif_test") {}
};

std::vector<std::uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<std::uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// ---------------------------------------------------------------------------------------------------
// A GIF LZW decoder written from the specification, independent of the encoder's code.

std::vector<std::uint8_t> lzw_decode(const std::vector<std::uint8_t>& data, std::size_t& pos) {
  const int min_code_size = data.at(pos++);
  std::vector<std::uint8_t> packed;
  while (true) {
    const std::size_t n = data.at(pos++);
    if (n == 0) break;
    packed.insert(packed.end(), data.begin() + static_cast<std::ptrdiff_t>(pos),
                  data.begin() + static_cast<std::ptrdiff_t>(pos + n));
    pos += n;
  }
  const int clear = 1 << min_code_size, end = clear + 1;
  std::vector<std::vector<std::uint8_t>> table;
  auto reset = [&] {
    table.clear();
    for (int i = 0; i < clear + 2; ++i) table.push_back({static_cast<std::uint8_t>(i)});
  };
  reset();
  int size = min_code_size + 1;
  std::size_t bit = 0;
  auto read = [&]() -> int {
    int code = 0;
    for (int i = 0; i < size; ++i, ++bit) {
      if (bit / 8 >= packed.size()) throw std::runtime_error("LZW data ends early");
      code |= ((packed[bit / 8] >> (bit % 8)) & 1) << i;
    }
    return code;
  };
  std::vector<std::uint8_t> out;
  int previous = -1;
  while (true) {
    const int code = read();
    if (code == clear) {
      reset();
      size = min_code_size + 1;
      previous = -1;
      continue;
    }
    if (code == end) break;
    std::vector<std::uint8_t> entry;
    if (code < static_cast<int>(table.size())) {
      entry = table[static_cast<std::size_t>(code)];
    } else if (code == static_cast<int>(table.size()) && previous >= 0) {
      entry = table[static_cast<std::size_t>(previous)];
      entry.push_back(entry.front());
    } else {
      throw std::runtime_error("bad LZW code " + std::to_string(code));
    }
    out.insert(out.end(), entry.begin(), entry.end());
    if (previous >= 0 && table.size() < 4096) {
      std::vector<std::uint8_t> added = table[static_cast<std::size_t>(previous)];
      added.push_back(entry.front());
      table.push_back(std::move(added));
      if (table.size() == (1u << size) && size < 12) ++size;
    }
    previous = code;
  }
  return out;
}

// Decodes the first image of a GIF written by GifWriter into RGB pixels via the global palette.
cv::Mat decode_first_gif_frame(const std::string& path) {
  const std::vector<std::uint8_t> d = read_bytes(path);
  const int width = d[6] | (d[7] << 8), height = d[8] | (d[9] << 8);
  std::size_t pos = 13;
  const std::size_t palette_at = pos;
  pos += 3u * (1u << ((d[10] & 7) + 1));
  while (d.at(pos) == 0x21) {  // extensions
    pos += 2;
    while (d.at(pos) != 0) pos += d[pos] + 1u;
    ++pos;
  }
  EXPECT_EQ(d.at(pos), 0x2C);
  pos += 10;
  const std::vector<std::uint8_t> indices = lzw_decode(d, pos);
  EXPECT_EQ(indices.size(), static_cast<std::size_t>(width) * height);
  cv::Mat rgb(height, width, CV_8UC3);
  for (int i = 0; i < width * height && i < static_cast<int>(indices.size()); ++i) {
    const std::size_t p = palette_at + 3u * indices[static_cast<std::size_t>(i)];
    rgb.at<cv::Vec3b>(i / width, i % width) = cv::Vec3b(d[p], d[p + 1], d[p + 2]);
  }
  return rgb;
}

// ---------------------------------------------------------------------------------------------------
// GIF

TEST(Gif, LzwRoundTripsAcrossCodeWidthsAndClears) {
  std::mt19937 rng(3);
  // Lengths around every code-width change and past a dictionary reset.
  for (std::size_t length = 0; length < 1200; ++length) {
    std::vector<std::uint8_t> indices(length);
    for (auto& v : indices) v = static_cast<std::uint8_t>(rng() % 256);
    const std::vector<std::uint8_t> encoded = gif_lzw_encode(indices);
    std::size_t pos = 0;
    ASSERT_EQ(lzw_decode(encoded, pos), indices) << "length " << length;
    ASSERT_EQ(pos, encoded.size());
  }
  for (int alphabet : {2, 7, 256}) {
    std::vector<std::uint8_t> indices(200000);
    for (auto& v : indices) v = static_cast<std::uint8_t>(rng() % static_cast<unsigned>(alphabet));
    const std::vector<std::uint8_t> encoded = gif_lzw_encode(indices);
    std::size_t pos = 0;
    ASSERT_EQ(lzw_decode(encoded, pos), indices) << "alphabet " << alphabet;
  }
}

TEST(Gif, WriterFramesAndExactPaletteColours) {
  TempDir dir;
  // A frame like the movie's: a white block (a zero map), a ramp of the diverging colormap, and colours
  // the palette does not hold exactly (sample images).
  cv::Mat frame(48, 96, CV_8UC3, cv::Scalar(255, 255, 255));
  for (int x = 0; x < 32; ++x) {
    const cv::Vec3b c = colormap_rgb(Colormap::diverging, static_cast<float>(x) / 31.0f);
    frame(cv::Rect(32 + x, 0, 1, 48)).setTo(cv::Scalar(c[0], c[1], c[2]));
  }
  for (int y = 0; y < 48; ++y)
    for (int x = 64; x < 96; ++x)
      frame.at<cv::Vec3b>(y, x) = cv::Vec3b(static_cast<std::uint8_t>(5 * y), static_cast<std::uint8_t>(8 * (x - 64)), 100);
  const cv::Rect white(0, 0, 32, 48);
  const std::string path = dir / "movie.gif";
  {
    GifWriter gif(path, frame.cols, frame.rows, 20);
    for (int i = 0; i < 4; ++i) gif.add_frame(frame);
    EXPECT_THROW(gif.add_frame(cv::Mat(3, 3, CV_8UC3)), std::exception);
    EXPECT_EQ(gif.frames(), 4);
    gif.close();
  }
  const std::vector<std::uint8_t> bytes = read_bytes(path);
  ASSERT_GT(bytes.size(), 6u);
  EXPECT_EQ(std::string(bytes.begin(), bytes.begin() + 6), "GIF89a");
  EXPECT_EQ(bytes.back(), 0x3B);
  EXPECT_EQ(count_gif_frames(path), 4);

  const cv::Mat decoded = decode_first_gif_frame(path);
  ASSERT_EQ(decoded.size(), frame.size());
  // The zero map stays exactly white through the palette.
  const cv::Mat zero = decoded(white);
  for (int y = 0; y < zero.rows; ++y)
    for (int x = 0; x < zero.cols; ++x) ASSERT_EQ(zero.at<cv::Vec3b>(y, x), cv::Vec3b(255, 255, 255));
  // Every pixel close to the original (palette quantisation only).
  cv::Mat diff;
  cv::absdiff(decoded, frame, diff);
  double max_diff = 0;
  cv::minMaxLoc(diff.reshape(1), nullptr, &max_diff);
  EXPECT_LE(max_diff, 40);
  // The colormap ramp is in the palette: it comes back within the ramp's own step.
  const cv::Scalar ramp_error = cv::mean(diff(cv::Rect(32, 0, 32, 48)));
  EXPECT_LT(ramp_error[0] + ramp_error[1] + ramp_error[2], 6.0);

  // A file cut short is not a well-formed GIF.
  std::ofstream(dir / "cut.gif", std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), 2000);
  EXPECT_EQ(count_gif_frames(dir / "cut.gif"), -1);
  EXPECT_EQ(count_gif_frames(dir / "missing.gif"), -1);
}

}  // namespace
}  // namespace cnnvis
