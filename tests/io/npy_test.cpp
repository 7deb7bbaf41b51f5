// .npy: byte-exact headers as numpy.save writes them, round trips, and malformed files.
#include "cnnvis/io/npy.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "cnnvis/core/errors.h"

namespace cnnvis {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;

// What numpy writes: magic, version 1.0, little-endian header length, the dict repr, spare spaces
// for the first axis to grow to 21 digits, padding to 64 bytes, newline.
std::string numpy_header(const std::string& dict_and_spaces) {
  const std::size_t hlen = dict_and_spaces.size() + 1;
  const std::size_t pad = 64 - ((10 + hlen) % 64);
  std::string body = dict_and_spaces + std::string(pad, ' ') + "\n";
  std::string out("\x93NUMPY\x01\x00", 8);
  out.push_back(static_cast<char>(body.size() & 0xff));
  out.push_back(static_cast<char>(body.size() >> 8));
  return out + body;
}

Bytes npy_bytes(const std::string& header_text, const Bytes& data, int major = 1) {
  Bytes out = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<std::uint8_t>(major), 0};
  const std::size_t len = header_text.size();
  out.push_back(static_cast<std::uint8_t>(len & 0xff));
  out.push_back(static_cast<std::uint8_t>((len >> 8) & 0xff));
  if (major > 1) {
    out.push_back(static_cast<std::uint8_t>((len >> 16) & 0xff));
    out.push_back(static_cast<std::uint8_t>((len >> 24) & 0xff));
  }
  out.insert(out.end(), header_text.begin(), header_text.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

void expect_input_error(const std::function<void()>& fn, const std::string& name,
                        const std::vector<std::string>& fragments) {
  try {
    fn();
    ADD_FAILURE() << "expected InputError";
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind(name + ": ", 0), 0u) << msg;
    for (const std::string& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << "'" << f << "' not in: " << msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
}

void expect_parse_error(const Bytes& b, const std::vector<std::string>& fragments) {
  expect_input_error([&] { parse_npy(b.data(), b.size(), "map.npy"); }, "map.npy", fragments);
}

class NpyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cnnvis_npy_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  static Bytes read_all(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  std::string write_raw(const std::string& name, const Bytes& bytes) {
    std::ofstream out(path(name), std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    return path(name);
  }
  fs::path dir_;
};

TEST_F(NpyTest, HeaderBytesMatchNumpyFor224x224) {
  std::vector<float> data(224 * 224, 0.5f);
  write_npy(path("m.npy"), data.data(), {224, 224});
  const Bytes bytes = read_all(path("m.npy"));
  // np.save(f, np.zeros((224, 224), np.float32)) writes exactly these 128 header bytes.
  const std::string expected = std::string("\x93NUMPY\x01\x00\x76\x00", 10) +
                               "{'descr': '<f4', 'fortran_order': False, 'shape': (224, 224), }" +
                               std::string(54, ' ') + "\n";
  ASSERT_EQ(expected.size(), 128u);
  ASSERT_EQ(bytes.size(), 128u + 224 * 224 * 4);
  EXPECT_EQ(std::string(bytes.begin(), bytes.begin() + 128), expected);
  EXPECT_EQ(std::memcmp(bytes.data() + 128, data.data(), data.size() * 4), 0);
}

TEST_F(NpyTest, HeaderBytesMatchNumpyForOtherShapes) {
  const float x[6] = {1, 2, 3, 4, 5, 6};
  struct Case {
    std::vector<std::int64_t> shape;
    std::string dict;
  };
  const std::vector<Case> cases = {
      {{6}, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }" + std::string(20, ' ')},
      {{}, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }"},
      {{1, 2, 3}, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 3), }" + std::string(20, ' ')},
      {{0, 6}, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 6), }" + std::string(20, ' ')},
  };
  for (const Case& c : cases) {
    write_npy(path("s.npy"), x, c.shape);
    const Bytes bytes = read_all(path("s.npy"));
    const std::string header = numpy_header(c.dict);
    EXPECT_EQ(header.size() % 64, 0u);
    ASSERT_GE(bytes.size(), header.size());
    EXPECT_EQ(std::string(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(header.size())), header);
  }
}

TEST_F(NpyTest, ExactlyAlignedHeaderGetsAFullPadBlockLikeNumpy) {
  // numpy pads with 64 - (n % 64) spaces, i.e. 64 (not 0) when the header already ends on the
  // boundary. With shape (1,) * k, some k hits that case; the writer must agree with the formula.
  for (int k = 1; k <= 40; ++k) {
    const std::vector<std::int64_t> shape(static_cast<std::size_t>(k), 1);
    std::string shape_repr = "(";
    for (int i = 0; i < k; ++i) shape_repr += i ? ", 1" : "1";
    shape_repr += k == 1 ? ",)" : ")";
    const float one = 1.0f;
    write_npy(path("k.npy"), &one, shape);
    const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape_repr + ", }" +
                             std::string(20, ' ');
    const std::string header = numpy_header(dict);
    const Bytes bytes = read_all(path("k.npy"));
    ASSERT_EQ(bytes.size(), header.size() + 4) << k;
    EXPECT_EQ(std::string(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(header.size())), header) << k;
  }
}

TEST_F(NpyTest, RoundTripFloat) {
  std::vector<float> data(2 * 3 * 4);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<float>(i) * 0.25f - 3.0f;
  write_npy(path("r.npy"), data.data(), {2, 3, 4});
  const NpyArray a = read_npy(path("r.npy"));
  EXPECT_EQ(a.dtype, "<f4");
  EXPECT_EQ(a.shape, (std::vector<std::int64_t>{2, 3, 4}));
  EXPECT_EQ(a.numel(), 24);
  EXPECT_EQ(a.bytes.size(), 96u);
  EXPECT_EQ(a.to_float(), data);
}

TEST_F(NpyTest, RoundTripInt64) {
  const std::vector<std::int64_t> data = {0, -1, 1LL << 40, 7};
  write_npy_int64(path("i.npy"), data.data(), {4});
  const Bytes bytes = read_all(path("i.npy"));
  EXPECT_NE(std::string(bytes.begin(), bytes.begin() + 64).find("'descr': '<i8'"), std::string::npos);
  const NpyArray a = read_npy(path("i.npy"));
  EXPECT_EQ(a.dtype, "<i8");
  EXPECT_EQ(a.shape, (std::vector<std::int64_t>{4}));
  std::vector<std::int64_t> back(4);
  std::memcpy(back.data(), a.bytes.data(), 32);
  EXPECT_EQ(back, data);
  EXPECT_EQ(a.to_float(), (std::vector<float>{0.0f, -1.0f, static_cast<float>(1LL << 40), 7.0f}));
}

TEST_F(NpyTest, MatOneAndThreeChannelsAndNonContinuous) {
  cv::Mat m(3, 4, CV_32F);
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 4; ++c) m.at<float>(r, c) = static_cast<float>(r * 10 + c);
  write_npy(path("m1.npy"), m);
  NpyArray a = read_npy(path("m1.npy"));
  EXPECT_EQ(a.shape, (std::vector<std::int64_t>{3, 4}));
  EXPECT_EQ(a.to_float()[6], 12.0f);

  cv::Mat m3(2, 2, CV_32FC3, cv::Scalar(1, 2, 3));
  write_npy(path("m3.npy"), m3);
  a = read_npy(path("m3.npy"));
  EXPECT_EQ(a.shape, (std::vector<std::int64_t>{2, 2, 3}));
  EXPECT_EQ(a.to_float(), (std::vector<float>{1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3}));

  const cv::Mat roi = m(cv::Rect(1, 1, 2, 2));  // not continuous
  ASSERT_FALSE(roi.isContinuous());
  write_npy(path("roi.npy"), roi);
  a = read_npy(path("roi.npy"));
  EXPECT_EQ(a.shape, (std::vector<std::int64_t>{2, 2}));
  EXPECT_EQ(a.to_float(), (std::vector<float>{11, 12, 21, 22}));

  EXPECT_THROW(write_npy(path("u8.npy"), cv::Mat(2, 2, CV_8U)), UsageError);
  EXPECT_THROW(write_npy(path("f64.npy"), cv::Mat(2, 2, CV_64F)), UsageError);
}

TEST_F(NpyTest, WriteIntoMissingDirectoryThrowsOutputError) {
  const float x = 1.0f;
  const std::string p = path("missing/dir/x.npy");
  try {
    write_npy(p, &x, {1});
    FAIL() << "expected OutputError";
  } catch (const OutputError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(p + ": cannot write (", 0), 0u) << e.what();
  }
}

TEST_F(NpyTest, WriteToFullDeviceThrowsOutputError) {
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  std::vector<float> data(100000, 1.0f);
  try {
    write_npy("/dev/full", data.data(), {100000});
    FAIL() << "expected OutputError";
  } catch (const OutputError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("/dev/full: cannot write (", 0), 0u) << e.what();
  }
}

TEST(NpyParse, ReadsOtherWritersAndVersions) {
  // Python 2 era header: no trailing comma, double quotes, 'L' suffixes, minimal padding.
  const float v[2] = {1.5f, -2.0f};
  Bytes data(8);
  std::memcpy(data.data(), v, 8);
  const Bytes old = npy_bytes("{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2L,)}\n", data);
  NpyArray a = parse_npy(old.data(), old.size(), "old.npy");
  EXPECT_EQ(a.shape, (std::vector<std::int64_t>{2}));
  EXPECT_EQ(a.to_float(), (std::vector<float>{1.5f, -2.0f}));

  for (int major : {2, 3}) {
    const Bytes b = npy_bytes("{'shape': (1, 2), 'fortran_order': False, 'descr': '<f4', }   \n", data, major);
    a = parse_npy(b.data(), b.size(), "v.npy");
    EXPECT_EQ(a.shape, (std::vector<std::int64_t>{1, 2})) << major;
    EXPECT_EQ(a.to_float(), (std::vector<float>{1.5f, -2.0f}));
  }
  // Native and single-byte orders are normalised.
  Bytes d8 = {1, 2, 255};
  const Bytes u8 = npy_bytes("{'descr': '<u1', 'fortran_order': False, 'shape': (3,), }\n", d8);
  a = parse_npy(u8.data(), u8.size(), "u.npy");
  EXPECT_EQ(a.dtype, "|u1");
  EXPECT_EQ(a.to_float(), (std::vector<float>{1, 2, 255}));
  Bytes d4(4);
  const std::int32_t i32 = -5;
  std::memcpy(d4.data(), &i32, 4);
  const Bytes ni = npy_bytes("{'descr': '=i4', 'fortran_order': False, 'shape': (), }\n", d4);
  a = parse_npy(ni.data(), ni.size(), "i.npy");
  EXPECT_EQ(a.dtype, "<i4");
  EXPECT_TRUE(a.shape.empty());
  EXPECT_EQ(a.to_float(), (std::vector<float>{-5.0f}));
  // <f8 converts; a type without conversion is read but to_float() refuses it.
  Bytes d16(16);
  const double dd[2] = {0.25, 1e10};
  std::memcpy(d16.data(), dd, 16);
  const Bytes f8 = npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }\n", d16);
  EXPECT_EQ(parse_npy(f8.data(), f8.size(), "d.npy").to_float(), (std::vector<float>{0.25f, 1e10f}));
  const Bytes c8 = npy_bytes("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }\n", d16);
  a = parse_npy(c8.data(), c8.size(), "c.npy");
  EXPECT_EQ(a.dtype, "<c8");
  EXPECT_THROW(a.to_float(), InputError);
}

TEST(NpyParse, Corrupt) {
  const Bytes four(4, 0);
  expect_parse_error({}, {"not a .npy file"});
  expect_parse_error({'P', 'K', 3, 4, 0, 0, 0, 0, 0, 0}, {"not a .npy file"});
  expect_parse_error({0x93, 'N', 'U', 'M', 'P', 'Y', 4, 0, 0, 0}, {"unsupported .npy version 4.0"});
  expect_parse_error({0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0xff}, {"truncated .npy header"});
  expect_parse_error({0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0xff, 0x00, '{'}, {"truncated .npy header"});
  expect_parse_error(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", four),
                     {"truncated .npy data", "needs 8 bytes", "has 4"});
  expect_parse_error(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\n", Bytes(8, 0)),
                     {"4 bytes of trailing data"});
  expect_parse_error(npy_bytes("{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }\n", four),
                     {"Fortran-ordered"});
  expect_parse_error(npy_bytes("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }\n", four),
                     {"big-endian"});
  expect_parse_error(npy_bytes("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }\n", Bytes(8, 0)),
                     {"unsupported .npy dtype '|O'"});
  expect_parse_error(npy_bytes("{'descr': [('x', '<f4')], 'fortran_order': False, 'shape': (1,), }\n", four),
                     {"structured"});
  expect_parse_error(npy_bytes("{'descr': '<f4', 'fortran_order': False}\n", four), {"needs 'descr'"});
  expect_parse_error(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}\n", four),
                     {"unexpected key 'x'"});
  expect_parse_error(npy_bytes("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}\n", four),
                     {"'descr' given twice"});
  expect_parse_error(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }\n", four),
                     {"non-negative integers"});
  expect_parse_error(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1.5,), }\n", four),
                     {"invalid .npy header"});
  expect_parse_error(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }\n", four),
                     {"integer too large"});
  expect_parse_error(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }\n", four),
                     {"too large"});
  expect_parse_error(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), } junk\n", four),
                     {"unexpected text"});
  expect_parse_error(npy_bytes("__import__('os').system('true')\n", four), {"invalid .npy header"});
  expect_parse_error(npy_bytes("{'descr': '<f4', 'fortran_order': 0, 'shape': (1,), }\n", four), {"not a bool"});
  expect_parse_error(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': 1, }\n", four), {"not a tuple"});
  expect_parse_error(npy_bytes("{'descr': '<f4\n", four), {"invalid .npy header"});
}

TEST_F(NpyTest, ReadMissingAndDirectory) {
  expect_input_error([&] { read_npy(path("none.npy")); }, path("none.npy"), {"No such file"});
  expect_input_error([&] { read_npy(dir_.string()); }, dir_.string(), {"directory"});
  const std::string p = write_raw("short.npy", {0x93, 'N', 'U'});
  expect_input_error([&] { read_npy(p); }, p, {"not a .npy file"});
}

}  // namespace
}  // namespace cnnvis
