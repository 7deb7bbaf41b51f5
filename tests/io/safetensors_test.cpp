// safetensors: write -> read round trips for every dtype, F16/BF16 conversion of special values, and
// every kind of corrupt file, each checked for the exception type and a message naming file and problem.
#include "cnnvis/io/safetensors.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cnnvis/core/errors.h"

namespace cnnvis {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;

constexpr const char* kName = "model.safetensors";

// A raw safetensors image: length prefix, header text exactly as given, then data.
Bytes raw_file(const std::string& header, const Bytes& data, std::uint64_t declared_len = UINT64_MAX) {
  const std::uint64_t len = declared_len == UINT64_MAX ? header.size() : declared_len;
  Bytes out(8);
  for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(len >> (8 * i));
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

// Runs fn, which must throw exactly WeightsError whose message starts with "<name>: " and contains
// every one of the fragments.
void expect_weights_error(const std::function<void()>& fn, const std::string& name,
                          const std::vector<std::string>& fragments) {
  try {
    fn();
    ADD_FAILURE() << "expected WeightsError";
  } catch (const WeightsError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind(name + ": ", 0), 0u) << "message does not start with the file name: " << msg;
    for (const std::string& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << "'" << f << "' not in: " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "message is not one line: " << msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
}

void expect_parse_error(const Bytes& file, const std::vector<std::string>& fragments,
                        const SafetensorsLimits& limits = {}) {
  expect_weights_error([&] { parse_safetensors(file.data(), file.size(), kName, limits); }, kName, fragments);
}

std::uint16_t f16_bits(const std::vector<std::uint16_t>& v, std::size_t i) { return v[i]; }

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cnnvis_safetensors_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write_raw(const std::string& name, const Bytes& bytes) {
    const std::string path = (dir_ / name).string();
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    return path;
  }

  static Bytes read_all(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }

  fs::path dir_;
};

// ---- dtypes and conversion ----------------------------------------------------------------------

TEST(SafetensorsDtype, NamesAndSizes) {
  EXPECT_STREQ(dtype_name(DType::F32), "F32");
  EXPECT_STREQ(dtype_name(DType::F16), "F16");
  EXPECT_STREQ(dtype_name(DType::BF16), "BF16");
  EXPECT_STREQ(dtype_name(DType::I64), "I64");
  EXPECT_EQ(dtype_size(DType::F32), 4u);
  EXPECT_EQ(dtype_size(DType::F16), 2u);
  EXPECT_EQ(dtype_size(DType::BF16), 2u);
  EXPECT_EQ(dtype_size(DType::I64), 8u);
}

TEST(SafetensorsConvert, F16KnownValues) {
  const std::vector<std::uint16_t> bits = {
      0x3C00,  // 1.0
      0xC000,  // -2.0
      0x7BFF,  // 65504, the largest finite half
      0x0001,  // 2^-24, the smallest subnormal
      0x03FF,  // 1023 * 2^-24, the largest subnormal
      0x0400,  // 2^-14, the smallest normal
      0x8000,  // -0.0
      0x7C00,  // +inf
      0xFC00,  // -inf
      0x7E00,  // NaN
      0x3555,  // 0.333251953125
      0x8001,  // -2^-24
  };
  TensorEntry entry;
  entry.dtype = DType::F16;
  entry.shape = {static_cast<std::int64_t>(bits.size())};
  Bytes raw(bits.size() * 2);
  for (std::size_t i = 0; i < bits.size(); ++i) {
    raw[2 * i] = static_cast<std::uint8_t>(f16_bits(bits, i) & 0xff);
    raw[2 * i + 1] = static_cast<std::uint8_t>(f16_bits(bits, i) >> 8);
  }
  std::vector<float> out(bits.size(), -123.0f);
  convert_to_f32(entry, raw.data(), out.data());
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -2.0f);
  EXPECT_EQ(out[2], 65504.0f);
  EXPECT_EQ(out[3], std::ldexp(1.0f, -24));
  EXPECT_EQ(out[4], 1023.0f * std::ldexp(1.0f, -24));
  EXPECT_EQ(out[5], std::ldexp(1.0f, -14));
  EXPECT_EQ(out[6], 0.0f);
  EXPECT_TRUE(std::signbit(out[6]));
  EXPECT_TRUE(std::isinf(out[7]) && out[7] > 0);
  EXPECT_TRUE(std::isinf(out[8]) && out[8] < 0);
  EXPECT_TRUE(std::isnan(out[9]));
  EXPECT_EQ(out[10], 0.333251953125f);
  EXPECT_EQ(out[11], -std::ldexp(1.0f, -24));
}

TEST(SafetensorsConvert, F16AllFiniteValuesRoundTripThroughFloat) {
  // Every finite half converts to a float that, rounded back by hand, gives the same bits: checks
  // the exponent rebias and the subnormal path over the whole range.
  TensorEntry entry;
  entry.dtype = DType::F16;
  entry.shape = {65536};
  Bytes raw(65536 * 2);
  for (std::uint32_t h = 0; h < 65536; ++h) {
    raw[2 * h] = static_cast<std::uint8_t>(h & 0xff);
    raw[2 * h + 1] = static_cast<std::uint8_t>(h >> 8);
  }
  std::vector<float> out(65536);
  convert_to_f32(entry, raw.data(), out.data());
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const std::uint32_t exp = (h >> 10) & 0x1f;
    const float f = out[h];
    if (exp == 31) {
      if ((h & 0x3ff) == 0) ASSERT_TRUE(std::isinf(f)) << h;
      else ASSERT_TRUE(std::isnan(f)) << h;
      continue;
    }
    const double mag = exp == 0 ? std::ldexp(static_cast<double>(h & 0x3ff), -24)
                                : std::ldexp(1.0 + static_cast<double>(h & 0x3ff) / 1024.0, static_cast<int>(exp) - 15);
    const double expected = (h & 0x8000) ? -mag : mag;
    ASSERT_EQ(static_cast<double>(f), expected) << "half bits " << h;
    ASSERT_EQ(std::signbit(f), (h & 0x8000) != 0) << h;
  }
}

TEST(SafetensorsConvert, BF16KnownValues) {
  const std::vector<std::uint16_t> bits = {0x3F80, 0xC000, 0x7F7F, 0x0001, 0x7F80, 0xFF80, 0x7FC0, 0x8000, 0x4049};
  TensorEntry entry;
  entry.dtype = DType::BF16;
  entry.shape = {static_cast<std::int64_t>(bits.size())};
  Bytes raw;
  for (std::uint16_t b : bits) {
    raw.push_back(static_cast<std::uint8_t>(b & 0xff));
    raw.push_back(static_cast<std::uint8_t>(b >> 8));
  }
  std::vector<float> out(bits.size());
  convert_to_f32(entry, raw.data(), out.data());
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -2.0f);
  EXPECT_EQ(out[2], 3.3895313892515355e38f);  // largest finite bfloat16
  EXPECT_EQ(out[3], std::ldexp(1.0f, -133));   // smallest subnormal bfloat16
  EXPECT_TRUE(std::isinf(out[4]) && out[4] > 0);
  EXPECT_TRUE(std::isinf(out[5]) && out[5] < 0);
  EXPECT_TRUE(std::isnan(out[6]));
  EXPECT_TRUE(out[7] == 0.0f && std::signbit(out[7]));
  EXPECT_EQ(out[8], 3.140625f);
}

TEST(SafetensorsConvert, F32CopiesBitsAndI64Throws) {
  const float values[3] = {1.5f, -0.0f, std::numeric_limits<float>::quiet_NaN()};
  Bytes raw(sizeof(values) + 1);
  std::memcpy(raw.data() + 1, values, sizeof(values));  // deliberately unaligned source
  TensorEntry entry;
  entry.dtype = DType::F32;
  entry.shape = {3};
  float out[3];
  convert_to_f32(entry, raw.data() + 1, out);
  EXPECT_EQ(std::memcmp(out, values, sizeof(values)), 0);

  entry.dtype = DType::I64;
  entry.name = "num_batches_tracked";
  std::int64_t ints[3] = {};
  try {
    convert_to_f32(entry, reinterpret_cast<const std::uint8_t*>(ints), out);
    FAIL() << "expected WeightsError";
  } catch (const WeightsError& e) {
    EXPECT_NE(std::string(e.what()).find("num_batches_tracked"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("I64"), std::string::npos) << e.what();
  }
}

TEST(SafetensorsEntry, Numel) {
  TensorEntry e;
  EXPECT_EQ(e.numel(), 1);  // a scalar
  e.shape = {2, 3, 4};
  EXPECT_EQ(e.numel(), 24);
  e.shape = {5, 0};
  EXPECT_EQ(e.numel(), 0);
}

// ---- round trip ---------------------------------------------------------------------------------

TEST_F(SafetensorsTest, RoundTripAllDtypes) {
  const std::vector<float> f32 = {0.0f, 1.0f, -2.5f, 3.25f, 1e-30f, -1e30f};
  const std::vector<std::uint16_t> f16 = {0x3C00, 0xC000, 0x7BFF, 0x0001, 0x7C00, 0x7E00};
  const std::vector<std::uint16_t> bf16 = {0x3F80, 0xC000, 0x7F80, 0x7FC0};
  const std::vector<std::int64_t> i64 = {0, -1, std::numeric_limits<std::int64_t>::max(), 42};
  const float scalar = 7.0f;
  const std::string path = (dir_ / "all.safetensors").string();
  write_safetensors(path,
                    {{"conv.weight", DType::F32, {2, 3}, f32.data()},
                     {"half", DType::F16, {3, 2}, f16.data()},
                     {"brain", DType::BF16, {4}, bf16.data()},
                     {"bn.num_batches_tracked", DType::I64, {2, 2}, i64.data()},
                     {"scalar", DType::F32, {}, &scalar},
                     {"empty", DType::F32, {0, 5}, nullptr}},
                    {{"format", "pt"}, {"source", "unit test"}});

  SafetensorsFile file = SafetensorsFile::open(path);
  EXPECT_EQ(file.path(), path);
  EXPECT_EQ(file.file_size(), fs::file_size(path));
  ASSERT_EQ(file.entries().size(), 6u);
  EXPECT_EQ(file.metadata().at("format"), "pt");
  EXPECT_EQ(file.metadata().at("source"), "unit test");

  // entries() is sorted by offset, which for our writer is the given order.
  for (std::size_t i = 1; i < file.entries().size(); ++i) {
    EXPECT_LE(file.entries()[i - 1].begin, file.entries()[i].begin);
  }

  const TensorEntry* w = file.find("conv.weight");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->dtype, DType::F32);
  EXPECT_EQ(w->shape, (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(w->begin, 0u);
  EXPECT_EQ(w->end, 24u);
  std::vector<float> got(6);
  convert_to_f32(*w, file.data(*w), got.data());
  EXPECT_EQ(got, f32);

  const TensorEntry* h = file.find("half");
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->dtype, DType::F16);
  EXPECT_EQ(h->shape, (std::vector<std::int64_t>{3, 2}));
  EXPECT_EQ(std::memcmp(file.data(*h), f16.data(), 12), 0);
  convert_to_f32(*h, file.data(*h), got.data());
  EXPECT_EQ(got[0], 1.0f);
  EXPECT_EQ(got[1], -2.0f);
  EXPECT_EQ(got[2], 65504.0f);
  EXPECT_EQ(got[3], std::ldexp(1.0f, -24));
  EXPECT_TRUE(std::isinf(got[4]));
  EXPECT_TRUE(std::isnan(got[5]));

  const TensorEntry* b = file.find("brain");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->dtype, DType::BF16);
  std::vector<float> gb(4);
  convert_to_f32(*b, file.data(*b), gb.data());
  EXPECT_EQ(gb[0], 1.0f);
  EXPECT_EQ(gb[1], -2.0f);
  EXPECT_TRUE(std::isinf(gb[2]));
  EXPECT_TRUE(std::isnan(gb[3]));

  const TensorEntry* n = file.find("bn.num_batches_tracked");
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->dtype, DType::I64);
  EXPECT_EQ(n->numel(), 4);
  std::vector<std::int64_t> gi(4);
  std::memcpy(gi.data(), file.data(*n), 32);
  EXPECT_EQ(gi, i64);

  const TensorEntry* s = file.find("scalar");
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(s->shape.empty());
  EXPECT_EQ(s->numel(), 1);
  float gs = 0;
  convert_to_f32(*s, file.data(*s), &gs);
  EXPECT_EQ(gs, 7.0f);

  const TensorEntry* e = file.find("empty");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->numel(), 0);
  EXPECT_EQ(e->begin, e->end);

  EXPECT_EQ(file.find("missing"), nullptr);
  EXPECT_EQ(file.find("__metadata__"), nullptr);

  // Moving keeps the mapping valid and leaves the source empty.
  SafetensorsFile moved = std::move(file);
  EXPECT_NE(moved.find("conv.weight"), nullptr);
  convert_to_f32(*moved.find("conv.weight"), moved.data(*moved.find("conv.weight")), got.data());
  EXPECT_EQ(got, f32);
  SafetensorsFile other = SafetensorsFile::open(path);
  other = std::move(moved);
  EXPECT_EQ(other.entries().size(), 6u);
}

TEST_F(SafetensorsTest, WriterPadsHeaderWithSpacesToMultipleOf8AndKeepsOrder) {
  const float a[1] = {1.0f};
  const float b[3] = {1.0f, 2.0f, 3.0f};
  for (const std::string& name : {std::string("x"), std::string("xy"), std::string("xyz1234"), std::string("q")}) {
    const std::string path = (dir_ / ("pad_" + name + ".safetensors")).string();
    write_safetensors(path, {{"zeta." + name, DType::F32, {1}, a}, {"alpha", DType::F32, {3}, b}});
    const Bytes bytes = read_all(path);
    ASSERT_GE(bytes.size(), 8u);
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[static_cast<std::size_t>(i)];
    EXPECT_EQ(n % 8, 0u);
    EXPECT_EQ(bytes.size(), 8 + n + 16);
    const std::string header(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(n));
    const std::size_t last = header.find_last_not_of(' ');
    ASSERT_NE(last, std::string::npos);
    EXPECT_EQ(header[last], '}');
    EXPECT_LT(header.size() - last - 1, 8u);
    // Given order, not alphabetical: zeta first, at offset 0.
    EXPECT_LT(header.find("zeta."), header.find("alpha"));
    const auto j = nlohmann::json::parse(header);
    EXPECT_EQ(j["zeta." + name]["data_offsets"], nlohmann::json({0, 4}));
    EXPECT_EQ(j["alpha"]["data_offsets"], nlohmann::json({4, 16}));
    EXPECT_EQ(j["alpha"]["dtype"], "F32");
    EXPECT_EQ(j["alpha"]["shape"], nlohmann::json({3}));
    EXPECT_FALSE(j.contains("__metadata__"));  // omitted when empty
  }
}

TEST_F(SafetensorsTest, WriterRejectsDuplicateNamesAndLeavesNoFile) {
  const float a[1] = {1.0f};
  const std::string path = (dir_ / "dup.safetensors").string();
  try {
    write_safetensors(path, {{"w", DType::F32, {1}, a}, {"w", DType::F32, {1}, a}});
    FAIL() << "expected OutputError";
  } catch (const OutputError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(path + ": ", 0), 0u) << e.what();
    EXPECT_NE(std::string(e.what()).find("duplicate"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(path));
}

TEST_F(SafetensorsTest, WriterIntoMissingDirectoryThrowsOutputError) {
  const float a[1] = {1.0f};
  const std::string path = (dir_ / "no" / "such" / "dir.safetensors").string();
  try {
    write_safetensors(path, {{"w", DType::F32, {1}, a}});
    FAIL() << "expected OutputError";
  } catch (const OutputError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(path + ": cannot write", 0), 0u) << e.what();
  }
}

// ---- well-formed files from other writers -------------------------------------------------------

TEST(SafetensorsParse, AcceptsUnpaddedHeaderGapsAndTrailingWhitespace) {
  // Not 8-byte aligned, a gap between tensors, keys in any order: all valid per the format.
  const std::string header =
      R"({"b":{"shape":[1],"data_offsets":[8,12],"dtype":"F32"},"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}   )";
  const Bytes file = raw_file(header, Bytes(12, 0));
  const SafetensorsHeader h = parse_safetensors(file.data(), file.size(), kName);
  ASSERT_EQ(h.entries.size(), 2u);
  EXPECT_EQ(h.entries[0].name, "a");  // sorted by offset
  EXPECT_EQ(h.entries[1].name, "b");
  EXPECT_EQ(h.data_offset, 8 + header.size());
  EXPECT_TRUE(h.metadata.empty());
}

TEST(SafetensorsParse, EmptyHeaderObjectIsAnEmptyFile) {
  const Bytes file = raw_file("{}", {});
  EXPECT_TRUE(parse_safetensors(file.data(), file.size(), kName).entries.empty());
}

TEST(SafetensorsParse, ZeroSizedTensorsNeverOverlap) {
  const std::string header =
      R"({"big":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"none":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}})";
  const Bytes file = raw_file(header, Bytes(8, 0));
  EXPECT_EQ(parse_safetensors(file.data(), file.size(), kName).entries.size(), 2u);
}

// ---- corrupt buffers ----------------------------------------------------------------------------

TEST(SafetensorsParse, EmptyBuffer) { expect_parse_error({}, {"empty"}); }

TEST(SafetensorsParse, SevenBytes) { expect_parse_error(Bytes(7, 0), {"too small", "7 bytes"}); }

TEST(SafetensorsParse, HeaderLengthLargerThanFile) {
  const std::string header = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  expect_parse_error(raw_file(header, Bytes(4, 0), header.size() + 100), {"header length", "larger than the file"});
}

TEST(SafetensorsParse, HeaderLengthOverLimit) {
  // 2^40: a random 8-byte prefix, e.g. a file that is not safetensors at all.
  expect_parse_error(raw_file("{}", {}, 1ull << 40), {"header length 1099511627776", "exceeds the limit"});
  SafetensorsLimits small;
  small.max_header_bytes = 16;
  const std::string header = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  expect_parse_error(raw_file(header, Bytes(4, 0)), {"exceeds the limit of 16 bytes"}, small);
}

TEST(SafetensorsParse, InvalidJson) {
  expect_parse_error(raw_file(R"({"a": {"dtype": "F32", )", {}), {"not valid JSON"});
  expect_parse_error(raw_file("", {}), {"not valid JSON"});
  expect_parse_error(raw_file(std::string("{\"a\x00\": 1}", 10), {}), {"not valid JSON"});
  expect_parse_error(raw_file("{\"\xff\xfe\": {}}", {}), {"not valid JSON"});  // invalid UTF-8
}

TEST(SafetensorsParse, HeaderNotAnObject) {
  expect_parse_error(raw_file("[1, 2, 3]", {}), {"not a JSON object"});
  expect_parse_error(raw_file("\"text\"", {}), {"not a JSON object"});
  expect_parse_error(raw_file("null", {}), {"not a JSON object"});
}

TEST(SafetensorsParse, EntryNotAnObjectOrWithWrongFields) {
  expect_parse_error(raw_file(R"({"w": [1, 2]})", {}), {"tensor 'w'", "not a JSON object"});
  expect_parse_error(raw_file(R"({"w": {"dtype": "F32", "shape": [1]}})", Bytes(4, 0)), {"tensor 'w'", "data_offsets"});
  expect_parse_error(raw_file(R"({"w": {"shape": [1], "data_offsets": [0, 4]}})", Bytes(4, 0)), {"tensor 'w'", "dtype"});
  expect_parse_error(raw_file(R"({"w": {"dtype": "F32", "data_offsets": [0, 4]}})", Bytes(4, 0)), {"tensor 'w'", "shape"});
  expect_parse_error(
      raw_file(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "extra": 1}})", Bytes(4, 0)),
      {"tensor 'w'", "unexpected field 'extra'"});
}

TEST(SafetensorsParse, UnknownDtypesAreNamed) {
  for (const char* dtype : {"F64", "I32", "U8", "BOOL", "F8_E4M3", "f32"}) {
    const std::string header = std::string(R"({"features.0.weight": {"dtype": ")") + dtype +
                               R"(", "shape": [1], "data_offsets": [0, 8]}})";
    expect_parse_error(raw_file(header, Bytes(8, 0)),
                       {std::string("tensor 'features.0.weight' has dtype ") + dtype +
                        "; cnnvis reads F32, F16, BF16 and I64"});
  }
  expect_parse_error(raw_file(R"({"w": {"dtype": 4, "shape": [1], "data_offsets": [0, 4]}})", Bytes(4, 0)),
                     {"tensor 'w'", "'dtype' is not a string"});
}

TEST(SafetensorsParse, ShapeSizeMismatch) {
  // 2x3 F32 needs 24 bytes; the offsets span 20.
  expect_parse_error(raw_file(R"({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 20]}})", Bytes(24, 0)),
                     {"tensor 'w'", "shape [2, 3]", "needs 24 bytes", "span 20"});
  // F16 counts 2 bytes per element.
  expect_parse_error(raw_file(R"({"w": {"dtype": "F16", "shape": [4], "data_offsets": [0, 16]}})", Bytes(16, 0)),
                     {"tensor 'w'", "needs 8 bytes"});
}

TEST(SafetensorsParse, NegativeFractionalAndHugeShapes) {
  expect_parse_error(raw_file(R"({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", Bytes(4, 0)),
                     {"tensor 'w'", "non-negative integers"});
  expect_parse_error(raw_file(R"({"w": {"dtype": "F32", "shape": [1.0], "data_offsets": [0, 4]}})", Bytes(4, 0)),
                     {"tensor 'w'", "non-negative integers"});
  expect_parse_error(raw_file(R"({"w": {"dtype": "F32", "shape": ["1"], "data_offsets": [0, 4]}})", Bytes(4, 0)),
                     {"tensor 'w'", "non-negative integers"});
  expect_parse_error(raw_file(R"({"w": {"dtype": "F32", "shape": 4, "data_offsets": [0, 16]}})", Bytes(16, 0)),
                     {"tensor 'w'", "'shape' is not an array"});
  // Beyond 64 bits (parsed as a float by the JSON reader).
  expect_parse_error(
      raw_file(R"({"w": {"dtype": "F32", "shape": [99999999999999999999999], "data_offsets": [0, 4]}})", Bytes(4, 0)),
      {"tensor 'w'", "non-negative integers"});
  // Each dimension fits, the product overflows 64 bits.
  expect_parse_error(raw_file(R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296, 16], "data_offsets": [0, 0]}})",
                              {}),
                     {"tensor 'w'", "too large"});
  // numel fits in int64 but numel * 8 bytes does not fit in 64 bits.
  expect_parse_error(raw_file(R"({"w": {"dtype": "I64", "shape": [4611686018427387904], "data_offsets": [0, 0]}})",
                              {}),
                     {"tensor 'w'", "too large"});
  // Rank over the limit.
  expect_parse_error(
      raw_file(R"({"w": {"dtype": "F32", "shape": [1,1,1,1,1,1,1,1,1], "data_offsets": [0, 4]}})", Bytes(4, 0)),
      {"tensor 'w'", "rank 9"});
}

TEST(SafetensorsParse, BadDataOffsets) {
  for (const char* offsets : {"[0]", "[0, 4, 8]", "[-4, 0]", "[0, 4.0]", "\"0-4\"", "[0, null]"}) {
    const std::string header = std::string(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": )") + offsets + "}}";
    expect_parse_error(raw_file(header, Bytes(8, 0)), {"tensor 'w'", "'data_offsets' must be two non-negative integers"});
  }
  expect_parse_error(raw_file(R"({"w": {"dtype": "F32", "shape": [0], "data_offsets": [8, 4]}})", Bytes(8, 0)),
                     {"tensor 'w'", "begin after end"});
}

TEST(SafetensorsParse, OffsetsOutsideData) {
  expect_parse_error(raw_file(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})", Bytes(8, 0)),
                     {"tensor 'w'", "[4, 12]", "outside the data section (8 bytes)"});
  // Near 2^64: begin + size must not wrap around.
  expect_parse_error(raw_file(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [18446744073709551612, 18446744073709551616]}})",
                              Bytes(8, 0)),
                     {"tensor 'w'"});
  expect_parse_error(raw_file(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [18446744073709551611, 18446744073709551615]}})",
                              Bytes(8, 0)),
                     {"tensor 'w'", "outside the data section"});
}

TEST(SafetensorsParse, TruncatedData) {
  const std::string header = R"({"w": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 64]}})";
  expect_parse_error(raw_file(header, Bytes(60, 0)), {"tensor 'w'", "outside the data section (60 bytes)", "truncated"});
}

TEST(SafetensorsParse, OverlappingTensors) {
  const std::string header =
      R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},)"
      R"( "b": {"dtype": "F32", "shape": [2], "data_offsets": [12, 20]}})";
  expect_parse_error(raw_file(header, Bytes(20, 0)), {"tensors 'a' and 'b' overlap"});
  // Same range twice (the classic aliasing trick).
  const std::string same =
      R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},)"
      R"( "b": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})";
  expect_parse_error(raw_file(same, Bytes(16, 0)), {"overlap"});
  // Contained inside a larger tensor, after a third one.
  const std::string inside =
      R"({"big": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]},)"
      R"( "small": {"dtype": "F32", "shape": [1], "data_offsets": [28, 32]},)"
      R"( "mid": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}})";
  expect_parse_error(raw_file(inside, Bytes(32, 0)), {"tensors 'big' and 'mid' overlap"});
}

TEST(SafetensorsParse, DuplicateTensorNames) {
  const std::string header =
      R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},)"
      R"( "w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})";
  expect_parse_error(raw_file(header, Bytes(8, 0)), {"'w' more than once"});
  // Also inside an entry.
  expect_parse_error(
      raw_file(R"({"w": {"dtype": "F32", "dtype": "F16", "shape": [1], "data_offsets": [0, 4]}})", Bytes(4, 0)),
      {"'dtype' more than once"});
}

TEST(SafetensorsParse, Metadata) {
  const std::string ok = R"({"__metadata__": {"format": "pt", "n": "3"}, "w": {"dtype": "F32", "shape": [], "data_offsets": [0, 4]}})";
  const Bytes file = raw_file(ok, Bytes(4, 0));
  const SafetensorsHeader h = parse_safetensors(file.data(), file.size(), kName);
  EXPECT_EQ(h.metadata.size(), 2u);
  EXPECT_EQ(h.metadata.at("format"), "pt");
  ASSERT_EQ(h.entries.size(), 1u);
  expect_parse_error(raw_file(R"({"__metadata__": {"n": 3}})", {}), {"__metadata__", "'n'", "not a string"});
  expect_parse_error(raw_file(R"({"__metadata__": "pt"})", {}), {"__metadata__", "not a JSON object"});
}

TEST(SafetensorsParse, TooManyTensorsAndDeepNesting) {
  SafetensorsLimits limits;
  limits.max_tensors = 1;
  const std::string header =
      R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},)"
      R"( "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})";
  expect_parse_error(raw_file(header, Bytes(8, 0)), {"more than 1 tensors"}, limits);
  std::string deep = "{\"w\": ";
  for (int i = 0; i < 5000; ++i) deep += "[";
  for (int i = 0; i < 5000; ++i) deep += "]";
  deep += "}";
  expect_parse_error(raw_file(deep, {}), {"nested too deeply"});
}

TEST(SafetensorsParse, ControlCharactersInNamesStayOnOneLine) {
  const std::string header = R"({"bad\nname": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]}})";
  expect_parse_error(raw_file(header, Bytes(8, 0)), {"tensor 'bad\\x0aname' has dtype F64"});
}

TEST(SafetensorsParse, FileSizeLimit) {
  SafetensorsLimits limits;
  limits.max_file_bytes = 10;
  expect_parse_error(raw_file("{}      ", Bytes(8, 0)), {"over the limit of 10 bytes"}, limits);
}

// ---- corrupt files on disk ----------------------------------------------------------------------

TEST_F(SafetensorsTest, OpenMissingFile) {
  const std::string path = (dir_ / "vgg16.safetensors").string();
  expect_weights_error([&] { SafetensorsFile::open(path); }, path, {"cannot open", "No such file"});
}

TEST_F(SafetensorsTest, OpenDirectory) {
  expect_weights_error([&] { SafetensorsFile::open(dir_.string()); }, dir_.string(), {"is a directory"});
}

TEST_F(SafetensorsTest, OpenEmptyFile) {
  const std::string path = write_raw("empty.safetensors", {});
  expect_weights_error([&] { SafetensorsFile::open(path); }, path, {"empty"});
}

TEST_F(SafetensorsTest, OpenSevenByteFile) {
  const std::string path = write_raw("seven.safetensors", Bytes(7, 1));
  expect_weights_error([&] { SafetensorsFile::open(path); }, path, {"too small", "7 bytes"});
}

TEST_F(SafetensorsTest, OpenFifoIsRejectedWithoutBlocking) {
  const std::string path = (dir_ / "fifo.safetensors").string();
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  expect_weights_error([&] { SafetensorsFile::open(path); }, path, {"not a regular file"});
}

TEST_F(SafetensorsTest, OpenTruncatedFile) {
  const float data[16] = {};
  const std::string good = (dir_ / "good.safetensors").string();
  write_safetensors(good, {{"features.0.weight", DType::F32, {4, 4}, data}});
  Bytes bytes = read_all(good);
  bytes.resize(bytes.size() - 5);
  const std::string path = write_raw("truncated.safetensors", bytes);
  expect_weights_error([&] { SafetensorsFile::open(path); }, path,
                       {"tensor 'features.0.weight'", "outside the data section"});
  // Cut inside the header as well.
  bytes.resize(20);
  const std::string path2 = write_raw("cut_header.safetensors", bytes);
  expect_weights_error([&] { SafetensorsFile::open(path2); }, path2, {"header length", "larger than the file"});
}

TEST_F(SafetensorsTest, OpenFileWithWrongDtype) {
  const std::string path = write_raw(
      "vgg16.safetensors", raw_file(R"({"features.0.weight": {"dtype": "F64", "shape": [2], "data_offsets": [0, 16]}})",
                                    Bytes(16, 0)));
  expect_weights_error([&] { SafetensorsFile::open(path); }, path,
                       {"tensor 'features.0.weight' has dtype F64; cnnvis reads F32, F16, BF16 and I64"});
}

TEST_F(SafetensorsTest, OpenFileOverSizeLimit) {
  const float data[4] = {};
  const std::string path = (dir_ / "w.safetensors").string();
  write_safetensors(path, {{"w", DType::F32, {4}, data}});
  SafetensorsLimits limits;
  limits.max_file_bytes = 16;
  expect_weights_error([&] { SafetensorsFile::open(path, limits); }, path, {"over the limit of 16 bytes"});
}

TEST_F(SafetensorsTest, RandomCorruptionNeverCrashes) {
  // Flip bytes of a valid file at many positions: the parser must either accept it or throw
  // WeightsError, never crash or throw anything else (run under sanitizers to make this stronger).
  const float data[6] = {1, 2, 3, 4, 5, 6};
  const std::uint16_t half[2] = {0x3C00, 0x4000};
  const std::string path = (dir_ / "w.safetensors").string();
  write_safetensors(path, {{"a", DType::F32, {2, 3}, data}, {"b", DType::F16, {2}, half}}, {{"k", "v"}});
  const Bytes original = read_all(path);
  std::uint32_t state = 12345;
  int rejected = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    Bytes bytes = original;
    for (int k = 0; k < 3; ++k) {
      state = state * 1664525u + 1013904223u;
      const std::size_t pos = state % bytes.size();
      state = state * 1664525u + 1013904223u;
      bytes[pos] = static_cast<std::uint8_t>(state >> 24);
    }
    state = state * 1664525u + 1013904223u;
    if (state % 4 == 0) bytes.resize(state % bytes.size());
    try {
      const SafetensorsHeader h = parse_safetensors(bytes.data(), bytes.size(), kName);
      for (const TensorEntry& e : h.entries) {
        ASSERT_LE(h.data_offset + e.end, bytes.size());
        ASSERT_EQ(e.end - e.begin, static_cast<std::uint64_t>(e.numel()) * dtype_size(e.dtype));
      }
    } catch (const WeightsError& e) {
      ++rejected;
      ASSERT_EQ(std::string(e.what()).rfind(std::string(kName) + ": ", 0), 0u) << e.what();
    }
  }
  EXPECT_GT(rejected, 100);
}

}  // namespace
}  // namespace cnnvis
