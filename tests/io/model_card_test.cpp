// Model cards: parsing a full card, defaults, every validation error, JSON syntax errors and round trips.
#include "cnnvis/io/model_card.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cnnvis/core/errors.h"

namespace cnnvis {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const char* kFullCard = R"({
  "name": "vgg16",
  "architecture": "vgg16",
  "input_size": [224, 200],
  "channel_order": "RGB",
  "input_range": 255.0,
  "mean": [0.485, 0.456, 0.406],
  "std": [0.229, 0.224, 0.225],
  "transform_input": true,
  "labels": ["tench", "goldfish", "Great White Shark"],
  "default_layer": "features.29",
  "weights_file": "vgg16.safetensors",
  "weights_sha256": "ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789",
  "ignore_weight_prefixes": ["aux1.", "aux2."],
  "source": "torchvision 0.14 pretrained IMAGENET1K_V1",
  "future_field": {"anything": 1}
})";

json minimal() { return json{{"name", "m"}, {"architecture", "fashion_vgg"}}; }

void expect_card_error(const json& j, const std::vector<std::string>& fragments) {
  try {
    model_card_from_json(j, "models/m.json");
    ADD_FAILURE() << "expected ModelCardError for " << j.dump();
  } catch (const ModelCardError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind("models/m.json: ", 0), 0u) << msg;
    for (const std::string& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << "'" << f << "' not in: " << msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
}

json with(const std::string& key, const json& value) {
  json j = minimal();
  j[key] = value;
  return j;
}

class ModelCardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cnnvis_model_card_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    const std::string p = (dir_ / name).string();
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }
  fs::path dir_;
};

TEST_F(ModelCardTest, ReadsAFullCard) {
  const std::string path = write("vgg16.json", kFullCard);
  const ModelCard c = read_model_card(path);
  EXPECT_EQ(c.name, "vgg16");
  EXPECT_EQ(c.architecture, "vgg16");
  EXPECT_EQ(c.input_height, 224);
  EXPECT_EQ(c.input_width, 200);
  EXPECT_EQ(c.channel_order, "RGB");
  EXPECT_EQ(c.input_range, 255.0f);
  EXPECT_FLOAT_EQ(c.mean[1], 0.456f);
  EXPECT_FLOAT_EQ(c.std[2], 0.225f);
  EXPECT_TRUE(c.transform_input);
  ASSERT_EQ(c.labels.size(), 3u);
  EXPECT_EQ(c.default_layer, "features.29");
  EXPECT_EQ(c.weights_file, "vgg16.safetensors");
  EXPECT_EQ(c.weights_sha256, "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
  EXPECT_EQ(c.ignore_weight_prefixes, (std::vector<std::string>{"aux1.", "aux2."}));
  EXPECT_EQ(c.source, "torchvision 0.14 pretrained IMAGENET1K_V1");
  EXPECT_EQ(c.card_path, path);
  EXPECT_EQ(c.weights_path(), (dir_ / "vgg16.safetensors").string());
}

TEST(ModelCard, DefaultsForOptionalFields) {
  const ModelCard c = model_card_from_json(minimal(), "m.json");
  EXPECT_EQ(c.input_height, 224);
  EXPECT_EQ(c.input_width, 224);
  EXPECT_EQ(c.channel_order, "RGB");
  EXPECT_EQ(c.input_range, 1.0f);
  EXPECT_FLOAT_EQ(c.mean[0], 0.485f);
  EXPECT_FALSE(c.transform_input);
  EXPECT_TRUE(c.labels.empty());
  EXPECT_TRUE(c.weights_sha256.empty());
  EXPECT_TRUE(c.card_path.empty());
  // null sha is the same as absent
  EXPECT_TRUE(model_card_from_json(with("weights_sha256", nullptr), "m.json").weights_sha256.empty());
}

TEST(ModelCard, Labels) {
  ModelCard c;
  c.labels = {"tench", "goldfish", "Great White Shark"};
  EXPECT_EQ(c.label(0), "tench");
  EXPECT_EQ(c.label(2), "Great White Shark");
  EXPECT_EQ(c.label(3), "class 3");
  EXPECT_EQ(c.label(-1), "class -1");
  EXPECT_EQ(c.find_label("great white shark"), 2);
  EXPECT_EQ(c.find_label("GOLDFISH"), 1);
  EXPECT_EQ(c.find_label("gold"), -1);
  ModelCard empty;
  EXPECT_EQ(empty.label(7), "class 7");
  EXPECT_EQ(empty.find_label("class 7"), -1);
}

TEST(ModelCard, WeightsPathResolution) {
  ModelCard c;
  EXPECT_EQ(c.weights_path(), "");
  c.weights_file = "w.safetensors";
  EXPECT_EQ(c.weights_path(), "w.safetensors");  // no card path: relative to the working directory
  c.card_path = "models/vgg16.json";
  EXPECT_EQ(c.weights_path(), "models/w.safetensors");
  c.card_path = "vgg16.json";
  EXPECT_EQ(c.weights_path(), "w.safetensors");
  c.card_path = "/opt/cnnvis/models/vgg16.json";
  c.weights_file = "sub/w.safetensors";
  EXPECT_EQ(c.weights_path(), "/opt/cnnvis/models/sub/w.safetensors");
  c.weights_file = "/data/w.safetensors";
  EXPECT_EQ(c.weights_path(), "/data/w.safetensors");
}

TEST(ModelCard, RequiredFields) {
  expect_card_error(json{{"architecture", "vgg16"}}, {"missing required field 'name'"});
  expect_card_error(json{{"name", "m"}}, {"missing required field 'architecture'"});
  expect_card_error(with("name", 3), {"field 'name' must be a non-empty string"});
  expect_card_error(with("name", ""), {"field 'name'"});
  expect_card_error(with("architecture", nullptr), {"field 'architecture'"});
  expect_card_error(json::array({1, 2}), {"must be a JSON object"});
}

TEST(ModelCard, InputSize) {
  for (const json& bad : {json{224}, json{224, 224, 3}, json{0, 224}, json{224, -1}, json{224, 4097},
                          json{224.5, 224}, json{"224", 224}, json("224x224"), json(224)}) {
    expect_card_error(with("input_size", bad), {"field 'input_size'"});
  }
  const ModelCard c = model_card_from_json(with("input_size", {4096, 1}), "m.json");
  EXPECT_EQ(c.input_height, 4096);
  EXPECT_EQ(c.input_width, 1);
}

TEST(ModelCard, MeanAndStd) {
  expect_card_error(with("mean", {0.5, 0.5}), {"field 'mean' must be 3 numbers"});
  expect_card_error(with("mean", {0.5, 0.5, "x"}), {"field 'mean' must be 3 numbers"});
  expect_card_error(with("mean", 0.5), {"field 'mean' must be 3 numbers"});
  expect_card_error(with("std", {0.2, 0.0, 0.2}), {"field 'std'", "greater than 0"});
  expect_card_error(with("std", {0.2, -0.1, 0.2}), {"field 'std'", "greater than 0"});
  expect_card_error(with("std", {0.2, 0.2, 0.2, 0.2}), {"field 'std' must be 3 numbers"});
  // negative means are fine
  EXPECT_EQ(model_card_from_json(with("mean", {-1, 0, 1}), "m.json").mean[0], -1.0f);
}

TEST(ModelCard, OtherFieldTypes) {
  expect_card_error(with("labels", {"a", 1}), {"field 'labels' must be an array of strings"});
  expect_card_error(with("labels", "a,b"), {"field 'labels'"});
  expect_card_error(with("ignore_weight_prefixes", {1}), {"field 'ignore_weight_prefixes'"});
  expect_card_error(with("transform_input", "yes"), {"field 'transform_input'"});
  expect_card_error(with("input_range", 0), {"field 'input_range'"});
  expect_card_error(with("input_range", "1"), {"field 'input_range'"});
  expect_card_error(with("channel_order", "RGBA"), {"field 'channel_order'"});
  expect_card_error(with("default_layer", 29), {"field 'default_layer' must be a string"});
  expect_card_error(with("weights_file", json::array()), {"field 'weights_file'"});
  expect_card_error(with("source", 1), {"field 'source'"});
}

TEST(ModelCard, WeightsSha256) {
  expect_card_error(with("weights_sha256", "abc"), {"field 'weights_sha256' must be 64 hexadecimal digits"});
  expect_card_error(with("weights_sha256", std::string(63, 'a') + "g"), {"field 'weights_sha256'"});
  expect_card_error(with("weights_sha256", 12), {"field 'weights_sha256'"});
  EXPECT_EQ(model_card_from_json(with("weights_sha256", std::string(64, 'F')), "m.json").weights_sha256,
            std::string(64, 'f'));
}

TEST_F(ModelCardTest, SyntaxErrorsGiveLineAndColumn) {
  const std::string path = write("broken.json", "{\n  \"name\": \"m\",\n  \"architecture\": vgg16\n}\n");
  try {
    read_model_card(path);
    FAIL() << "expected ModelCardError";
  } catch (const ModelCardError& e) {
    EXPECT_EQ(std::string(e.what()), path + ": not valid JSON (line 3, column 19)");
  }
  const std::string empty = write("empty.json", "");
  EXPECT_THROW(read_model_card(empty), ModelCardError);
  const std::string trailing = write("trailing.json", "{\"name\": \"m\", \"architecture\": \"a\",}");
  try {
    read_model_card(trailing);
    FAIL() << "expected ModelCardError";
  } catch (const ModelCardError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(trailing + ": not valid JSON (line 1, column", 0), 0u) << e.what();
  }
}

TEST_F(ModelCardTest, MissingFileAndDirectory) {
  const std::string path = (dir_ / "nope.json").string();
  try {
    read_model_card(path);
    FAIL() << "expected ModelCardError";
  } catch (const ModelCardError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(path + ": ", 0), 0u) << e.what();
    EXPECT_NE(std::string(e.what()).find("No such file"), std::string::npos) << e.what();
  }
  EXPECT_THROW(read_model_card(dir_.string()), ModelCardError);
}

TEST_F(ModelCardTest, FieldErrorsFromFileNameThePath) {
  const std::string path = write("m.json", R"({"name": "m", "architecture": "vgg16", "mean": [1, 2]})");
  try {
    read_model_card(path);
    FAIL() << "expected ModelCardError";
  } catch (const ModelCardError& e) {
    EXPECT_EQ(std::string(e.what()), path + ": field 'mean' must be 3 numbers");
  }
}

TEST_F(ModelCardTest, WriteAndReadBack) {
  ModelCard c = model_card_from_json(json::parse(kFullCard), "x");
  c.card_path = "ignored";
  const std::string path = (dir_ / "out.json").string();
  write_model_card(c, path);
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  const ModelCard back = read_model_card(path);
  EXPECT_EQ(back.name, c.name);
  EXPECT_EQ(back.input_height, c.input_height);
  EXPECT_EQ(back.input_width, c.input_width);
  EXPECT_EQ(back.input_range, c.input_range);
  EXPECT_EQ(back.mean, c.mean);
  EXPECT_EQ(back.std, c.std);
  EXPECT_EQ(back.labels, c.labels);
  EXPECT_EQ(back.transform_input, c.transform_input);
  EXPECT_EQ(back.weights_sha256, c.weights_sha256);
  EXPECT_EQ(back.ignore_weight_prefixes, c.ignore_weight_prefixes);
  EXPECT_EQ(back.source, c.source);
  EXPECT_EQ(back.card_path, path);
  const json j = model_card_to_json(ModelCard{});
  EXPECT_TRUE(j["weights_sha256"].is_null());
  EXPECT_EQ(j["input_size"], json({224, 224}));
  EXPECT_FALSE(j.contains("card_path"));
}

TEST_F(ModelCardTest, WriteIntoMissingDirectoryThrowsOutputError) {
  const std::string path = (dir_ / "no" / "card.json").string();
  try {
    write_model_card(ModelCard{}, path);
    FAIL() << "expected OutputError";
  } catch (const OutputError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(path + ": cannot write", 0), 0u) << e.what();
  }
}

}  // namespace
}  // namespace cnnvis
