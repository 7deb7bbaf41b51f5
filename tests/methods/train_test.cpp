// Training fashion_vgg (short CI-sized runs), determinism, and the training movie: frame rendering
// colours, the GIF encoder (decoded back here with an independent LZW decoder) and the recorder's files.
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <unistd.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "cnnvis/core/errors.h"
#include "cnnvis/core/runtime.h"
#include "cnnvis/core/sha256.h"
#include "cnnvis/io/idx.h"
#include "cnnvis/io/model_card.h"
#include "cnnvis/methods/train.h"
#include "cnnvis/methods/training_movie.h"

namespace cnnvis {
namespace {

namespace fs = std::filesystem;

bool have_fashion_mnist() { return fs::exists(fs::path(kFashionMnistDir) / "train-images-idx3-ubyte.gz"); }

#define SKIP_WITHOUT_FASHION_MNIST()                                                                        \
  if (!have_fashion_mnist())                                                                                \
  GTEST_SKIP() << kFashionMnistDir << " is absent (Debian package dataset-fashion-mnist); training tests skipped"

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() / ("cnnvis_train_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
  static inline int counter_ = 0;
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
// Frame rendering

std::vector<cv::Mat> sample_images(int n) {
  std::vector<cv::Mat> images;
  for (int i = 0; i < n; ++i) images.emplace_back(64, 64, CV_8UC3, cv::Scalar(20 * i, 100, 200 - 15 * i));
  return images;
}

TEST(TrainingMovieFrame, ZeroIsWhitePositiveBlueNegativeRed) {
  const int n = 3;
  // Channels: 0 all zero, 1 positive, 2 negative, 3 the maximum |value| of the frame.
  std::vector<std::vector<cv::Mat>> maps(n);
  for (int s = 0; s < n; ++s) {
    maps[s].push_back(cv::Mat::zeros(8, 8, CV_32F));
    maps[s].push_back(cv::Mat(8, 8, CV_32F, cv::Scalar(1.5f)));
    maps[s].push_back(cv::Mat(8, 8, CV_32F, cv::Scalar(-1.5f)));
    maps[s].push_back(cv::Mat(16, 16, CV_32F, cv::Scalar(s == 0 ? 3.0f : 0.0f)));
  }
  const std::vector<int> ids = {0, 1, 2, 3};
  const ActivationFrameStyle style;
  const cv::Mat frame = render_activation_frame(sample_images(n), maps, ids, "features.0", 7, 0.0f, style);
  ASSERT_EQ(frame.type(), CV_8UC3);
  const cv::Rect last = activation_frame_cell(n - 1, ids.size() - 1, style);
  EXPECT_GE(frame.cols, last.x + last.width);
  EXPECT_GE(frame.rows, last.y + last.height);

  for (int s = 0; s < n; ++s) {
    const cv::Mat zero = frame(activation_frame_cell(s, 0, style));
    for (int y = 0; y < zero.rows; ++y)
      for (int x = 0; x < zero.cols; ++x) ASSERT_EQ(zero.at<cv::Vec3b>(y, x), cv::Vec3b(255, 255, 255));
    const cv::Vec3b pos = frame(activation_frame_cell(s, 1, style)).at<cv::Vec3b>(5, 5);
    const cv::Vec3b neg = frame(activation_frame_cell(s, 2, style)).at<cv::Vec3b>(5, 5);
    EXPECT_GT(pos[2], pos[0] + 40) << "positive should be blue-ish (RGB)";
    EXPECT_GT(neg[0], neg[2] + 40) << "negative should be red-ish (RGB)";
    // Shared scale: 1.5 of 3.0 is half-way, visibly lighter than the full colour at 3.0.
    EXPECT_GT(pos[0], 60);
  }
  const cv::Vec3b full = frame(activation_frame_cell(0, 3, style)).at<cv::Vec3b>(5, 5);
  const cv::Vec3b half = frame(activation_frame_cell(0, 1, style)).at<cv::Vec3b>(5, 5);
  EXPECT_LT(full[0], half[0]);
  // The sample images form the header row, above the first channel row.
  const cv::Rect first = activation_frame_cell(0, 0, style);
  EXPECT_EQ(frame.at<cv::Vec3b>(first.y - style.cell / 2 - 6, first.x + style.cell / 2), cv::Vec3b(0, 100, 200));
}

TEST(TrainingMovieFrame, ExplicitScaleAndBadInput) {
  std::vector<std::vector<cv::Mat>> maps(1, {cv::Mat(4, 4, CV_32F, cv::Scalar(1.0f))});
  const cv::Mat saturated = render_activation_frame(sample_images(1), maps, {0}, "x", 0, 1.0f);
  const cv::Mat faint = render_activation_frame(sample_images(1), maps, {0}, "x", 0, 100.0f);
  const cv::Vec3b a = saturated(activation_frame_cell(0, 0)).at<cv::Vec3b>(1, 1);
  const cv::Vec3b b = faint(activation_frame_cell(0, 0)).at<cv::Vec3b>(1, 1);
  EXPECT_LT(a[0], b[0]);
  EXPECT_GE(b[0], 245);
  EXPECT_THROW(render_activation_frame(sample_images(2), maps, {0}, "x", 0), std::exception);
}

TEST(TrainingMovieCurves, RendersWithAndWithoutPoints) {
  std::vector<TrainCurvePoint> curve;
  for (int i = 1; i <= 20; ++i) curve.push_back({i * 10, i / 10.0, 2.3 / i, 0.1 + 0.04 * i});
  const cv::Mat image = render_training_curves(curve, {{100, 1.0, 0.7}, {200, 2.0, 0.85}});
  EXPECT_EQ(image.type(), CV_8UC3);
  EXPECT_GT(image.cols, 400);
  EXPECT_EQ(render_training_curves({}, {}).type(), CV_8UC3);
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
  std::vector<std::vector<cv::Mat>> maps(2);
  for (int s = 0; s < 2; ++s) {
    maps[s].push_back(cv::Mat::zeros(8, 8, CV_32F));
    cv::Mat ramp(8, 8, CV_32F);
    for (int i = 0; i < 64; ++i) ramp.at<float>(i / 8, i % 8) = static_cast<float>(i - 32);
    maps[s].push_back(ramp);
  }
  const cv::Mat frame = render_activation_frame(sample_images(2), maps, {0, 1}, "layer", 0);
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
  const cv::Mat zero = decoded(activation_frame_cell(0, 0));
  for (int y = 0; y < zero.rows; ++y)
    for (int x = 0; x < zero.cols; ++x) ASSERT_EQ(zero.at<cv::Vec3b>(y, x), cv::Vec3b(255, 255, 255));
  // Every pixel close to the original (palette quantisation only).
  cv::Mat diff;
  cv::absdiff(decoded, frame, diff);
  double max_diff = 0;
  cv::minMaxLoc(diff.reshape(1), nullptr, &max_diff);
  EXPECT_LE(max_diff, 40);
  EXPECT_LT(cv::mean(diff)[0] + cv::mean(diff)[1] + cv::mean(diff)[2], 6.0);

  // A file cut short is not a well-formed GIF.
  std::ofstream(dir / "cut.gif", std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), 2000);
  EXPECT_EQ(count_gif_frames(dir / "cut.gif"), -1);
  EXPECT_EQ(count_gif_frames(dir / "missing.gif"), -1);
}

// ---------------------------------------------------------------------------------------------------
// Training (needs Fashion-MNIST)

TrainOptions tiny_options(std::uint64_t seed) {
  TrainOptions o;
  o.seed = seed;
  o.epochs = 1;
  o.batch_size = 32;
  o.train_limit = 256;
  o.test_limit = 64;
  return o;
}

TEST(Train, ShortRunBeatsChance) {
  SKIP_WITHOUT_FASHION_MNIST();
  TempDir dir;
  TrainOptions o;
  o.seed = 1;
  o.epochs = 2;
  o.train_limit = 3000;
  o.test_limit = 500;
  o.full_canvas_fraction = 0.3;  // a short run needs more whole-canvas steps for BatchNorm to settle
  const TrainResult r = train_fashion_vgg(o, dir / "w.safetensors");
  // Ten classes: chance is 10%. Measured 0.506 (seed 1), 0.494 (seed 2), 0.530 (seed 3) with one
  // thread, in about 30 s on a busy 2-core machine (not asserted: timing on shared CI is noise).
  EXPECT_GT(r.test_accuracy, 0.40) << "test accuracy " << r.test_accuracy;
  ASSERT_EQ(r.test_accuracy_per_epoch.size(), 2u);
  EXPECT_FALSE(r.curve.empty());
  EXPECT_EQ(r.curve.back().step, r.steps);

  // The card names the weights next to it and their sha256, and records the run.
  const ModelCard card = read_model_card(r.card_path);
  EXPECT_EQ(r.card_path, dir / "w.json");
  EXPECT_EQ(card.architecture, "fashion_vgg");
  EXPECT_EQ(card.weights_file, "w.safetensors");
  EXPECT_EQ(card.weights_sha256, sha256_file(dir / "w.safetensors"));
  EXPECT_NE(card.source.find("seed 1, 2 epochs, " + r.precision + ", test accuracy 0."), std::string::npos)
      << card.source;
  EXPECT_EQ(card.labels.size(), 10u);
}

TEST(Train, SameSeedSameWeights) {
  SKIP_WITHOUT_FASHION_MNIST();
  TempDir dir;
  const TrainResult a = train_fashion_vgg(tiny_options(5), dir / "a.safetensors");
  const TrainResult b = train_fashion_vgg(tiny_options(5), dir / "b.safetensors");
  const TrainResult c = train_fashion_vgg(tiny_options(6), dir / "c.safetensors");
  EXPECT_EQ(read_bytes(a.weights_path), read_bytes(b.weights_path));
  EXPECT_NE(read_bytes(a.weights_path), read_bytes(c.weights_path));
  EXPECT_EQ(a.test_accuracy, b.test_accuracy);
}

TEST(Train, PrecisionIsChosenByTheCpuAndBothArithmeticsTrain) {
  SKIP_WITHOUT_FASHION_MNIST();
  TempDir dir;
  TrainOptions o = tiny_options(5);
  const TrainResult automatic = train_fashion_vgg(o, dir / "auto.safetensors");
  EXPECT_EQ(automatic.precision, cpu_has_native_bf16() ? "bf16" : "fp32");
  o.precision = "fp32";
  const TrainResult fp32 = train_fashion_vgg(o, dir / "fp32.safetensors");
  o.precision = "bf16";  // emulated (slowly) where the CPU lacks bf16, but it still trains
  const TrainResult bf16 = train_fashion_vgg(o, dir / "bf16.safetensors");
  EXPECT_EQ(fp32.precision, "fp32");
  EXPECT_EQ(bf16.precision, "bf16");
  // bf16 rounds the convolutions' inputs, so the weights differ; the step count and the data do not.
  EXPECT_NE(read_bytes(fp32.weights_path), read_bytes(bf16.weights_path));
  EXPECT_EQ(read_bytes(automatic.weights_path), read_bytes((automatic.precision == "bf16" ? bf16 : fp32).weights_path));
  EXPECT_EQ(fp32.steps, bf16.steps);
  EXPECT_TRUE(std::isfinite(bf16.test_accuracy));
}

TEST(Train, WatchWritesFramesGifsAndCurves) {
  SKIP_WITHOUT_FASHION_MNIST();
  TempDir dir;
  TrainOptions o = tiny_options(2);
  o.watch_dir = dir / "watch";
  o.watch_every = 3;
  const TrainResult r = train_fashion_vgg(o, dir / "w.safetensors");
  ASSERT_EQ(r.steps, 8);  // 256 / 32
  const int expected_frames = 4;  // steps 0, 3, 6 and the final 8
  const std::vector<std::string> layers = {"features.0", "features.4", "features.8", "features.11", "features.15"};
  for (const std::string& layer : layers) {
    int pngs = 0;
    for (const auto& entry : fs::directory_iterator(dir.path() / "watch" / layer)) pngs += entry.path().extension() == ".png";
    EXPECT_EQ(pngs, expected_frames) << layer;
    const cv::Mat first = cv::imread((dir.path() / "watch" / layer / "frame_00000.png").string());
    EXPECT_FALSE(first.empty()) << layer;
    EXPECT_EQ(count_gif_frames((dir.path() / "watch" / (layer + ".gif")).string()), expected_frames) << layer;
  }
  EXPECT_TRUE(fs::exists(dir.path() / "watch" / "curves.png"));
  std::ifstream in(dir / "watch/curves.json");
  const nlohmann::json curves = nlohmann::json::parse(in);
  EXPECT_EQ(curves["frame_steps"], nlohmann::json({0, 3, 6, 8}));
  EXPECT_EQ(curves["layers"], nlohmann::json(layers));
  EXPECT_EQ(curves["test"].size(), 1u);
  EXPECT_FALSE(curves["train"].empty());
  EXPECT_EQ(r.movie_files.size(), layers.size() * (expected_frames + 1) + 2);
}

TEST(Train, BadInputs) {
  TempDir dir;
  TrainOptions o = tiny_options(1);
  o.data_dir = "/nonexistent/fashion";
  try {
    train_fashion_vgg(o, dir / "w.safetensors");
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/fashion"), std::string::npos) << e.what();
  }
  o = tiny_options(1);
  o.batch_size = 1;
  EXPECT_THROW(train_fashion_vgg(o, dir / "w.safetensors"), UsageError);
  o = tiny_options(1);
  o.epochs = 0;
  EXPECT_THROW(train_fashion_vgg(o, dir / "w.safetensors"), UsageError);
  o = tiny_options(1);
  o.precision = "fp16";
  EXPECT_THROW(train_fashion_vgg(o, dir / "w.safetensors"), UsageError);
}

TEST(Train, CanvasSeedsAreStable) {
  // The seeds are part of the data contract (cnnvis canvases reproduces the evaluation images).
  EXPECT_EQ(kTestCanvasSeed, 20240601u);
  EXPECT_EQ(train_canvas_seed(1, 0), train_canvas_seed(1, 0));
  EXPECT_NE(train_canvas_seed(1, 0), train_canvas_seed(1, 1));
  EXPECT_NE(train_canvas_seed(1, 0), train_canvas_seed(2, 0));
}

}  // namespace
}  // namespace cnnvis
