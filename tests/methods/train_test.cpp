// Training fashion_vgg (short CI-sized runs), determinism, and the training movie: frame rendering
// colours, the GIF encoder (decoded back here with an independent LZW decoder) and the recorder's files.
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "cnnvis/core/errors.h"
#include "cnnvis/core/runtime.h"
#include "cnnvis/core/sha256.h"
#include "cnnvis/io/idx.h"
#include "cnnvis/io/model_card.h"
#include "cnnvis/methods/train.h"
#include "cnnvis/io/gif.h"
#include "cnnvis/methods/training_movie.h"
#include "support/temp_dir.h"

namespace cnnvis {
namespace {

namespace fs = std::filesystem;

bool have_fashion_mnist() { return fs::exists(fs::path(kFashionMnistDir) / "train-images-idx3-ubyte.gz"); }

#define SKIP_WITHOUT_FASHION_MNIST()                                                                        \
  if (!have_fashion_mnist())                                                                                \
  GTEST_SKIP() << kFashionMnistDir << " is absent (Debian package dataset-fashion-mnist); training tests skipped"

// Every directory of this file's tests is named after it.
class TempDir : public testing::TempDir {
 public:
  TempDir() : testing::TempDir("cnnvis_train_test") {}
};

std::vector<std::uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<std::uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
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
