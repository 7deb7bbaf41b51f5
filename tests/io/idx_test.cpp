// IDX reader: good files (plain and gzipped), every kind of malformed file, and the real Fashion-MNIST.
#include "cnnvis/io/idx.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cnnvis/core/errors.h"

namespace cnnvis {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;

class IdxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cnnvis_idx_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write_plain(const std::string& name, const Bytes& bytes) {
    const std::string path = (dir_ / name).string();
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    return path;
  }

  // Written with zlib's gz* API, like gzip(1) would.
  std::string write_gz(const std::string& name, const Bytes& bytes) {
    const std::string path = (dir_ / name).string();
    gzFile file = gzopen(path.c_str(), "wb");
    EXPECT_NE(file, nullptr);
    if (!bytes.empty()) {
      EXPECT_EQ(gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())), static_cast<int>(bytes.size()));
    }
    gzclose(file);
    return path;
  }

  static Bytes read_all(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }

  fs::path dir_;
};

// IDX file with the given dims, type byte and values; data bytes count from 1 so order is checkable.
Bytes make_idx(const std::vector<std::uint32_t>& dims, std::uint8_t type = 0x08, std::size_t data_bytes = SIZE_MAX) {
  Bytes bytes = {0, 0, type, static_cast<std::uint8_t>(dims.size())};
  std::size_t count = 1;
  for (std::uint32_t d : dims) {
    bytes.push_back(static_cast<std::uint8_t>(d >> 24));
    bytes.push_back(static_cast<std::uint8_t>(d >> 16));
    bytes.push_back(static_cast<std::uint8_t>(d >> 8));
    bytes.push_back(static_cast<std::uint8_t>(d));
    count *= d;
  }
  if (data_bytes == SIZE_MAX) data_bytes = count;
  for (std::size_t i = 0; i < data_bytes; ++i) bytes.push_back(static_cast<std::uint8_t>((i + 1) & 0xFF));
  return bytes;
}

// Runs read_idx and returns the InputError message ("" if nothing was thrown).
std::string idx_error(const std::string& path) {
  try {
    read_idx(path);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

void expect_error(const std::string& path, const std::string& problem) {
  const std::string message = idx_error(path);
  ASSERT_FALSE(message.empty()) << "no InputError for " << path;
  EXPECT_EQ(message.rfind(path + ": ", 0), 0u) << message;
  EXPECT_NE(message.find(problem), std::string::npos) << "'" << message << "' lacks '" << problem << "'";
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

TEST_F(IdxTest, ReadsPlainFile) {
  const std::string path = write_plain("good-idx3-ubyte", make_idx({3, 4, 5}));
  const IdxArray array = read_idx(path);
  EXPECT_EQ(array.dims, (std::vector<std::int64_t>{3, 4, 5}));
  ASSERT_EQ(array.values.size(), 60u);
  EXPECT_EQ(array.values.front(), 1);
  EXPECT_EQ(array.values.back(), 60);
}

TEST_F(IdxTest, ReadsGzippedFile) {
  const Bytes bytes = make_idx({2, 7});
  const IdxArray array = read_idx(write_gz("good-idx2-ubyte.gz", bytes));
  EXPECT_EQ(array.dims, (std::vector<std::int64_t>{2, 7}));
  EXPECT_EQ(array.values, Bytes(bytes.begin() + 12, bytes.end()));
}

TEST_F(IdxTest, ReadsLargerGzippedFileAcrossChunks) {
  // More than the reader's 1 MiB inflate chunk, so the output buffer has to grow.
  const Bytes bytes = make_idx({3, 1000, 1000});
  const IdxArray array = read_idx(write_gz("big-idx3-ubyte.gz", bytes));
  ASSERT_EQ(array.values.size(), 3000000u);
  EXPECT_EQ(array.values[2999999], bytes.back());
}

TEST_F(IdxTest, ReadsOneAndFourDimensions) {
  EXPECT_EQ(read_idx(write_plain("a", make_idx({9}))).values.size(), 9u);
  EXPECT_EQ(read_idx(write_plain("b", make_idx({1, 2, 3, 4}))).dims.size(), 4u);
}

TEST_F(IdxTest, ParseIdxNamesTheSource) {
  const Bytes bytes = {1, 2, 8, 1};
  try {
    parse_idx(bytes.data(), bytes.size(), "memory");
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("memory: bad IDX magic 0x01020801", 0), 0u) << e.what();
  }
}

TEST_F(IdxTest, RejectsWrongMagic) {
  Bytes bytes = make_idx({2, 2});
  bytes[0] = 0x1f;
  expect_error(write_plain("magic", bytes), "bad IDX magic 0x1F000802");
}

TEST_F(IdxTest, RejectsWrongTypeByte) {
  expect_error(write_plain("float", make_idx({2, 2}, 0x0D)), "unsupported IDX element type 0x0D");
}

TEST_F(IdxTest, RejectsBadDimensionCount) {
  Bytes none = {0, 0, 8, 0};
  expect_error(write_plain("nodims", none), "bad IDX dimension count 0");
  expect_error(write_plain("fivedims", make_idx({1, 1, 1, 1, 1})), "bad IDX dimension count 5");
}

TEST_F(IdxTest, RejectsZeroDimension) {
  expect_error(write_plain("zero", make_idx({4, 0, 3})), "dimension 1 is 0");
}

TEST_F(IdxTest, RejectsHugeDimensions) {
  expect_error(write_plain("huge", make_idx({100000, 100000}, 0x08, 0)), "exceed the limit of 1e9 elements");
}

TEST_F(IdxTest, RejectsTruncatedHeader) {
  Bytes bytes = make_idx({2, 2, 2});
  bytes.resize(9);
  expect_error(write_plain("shorthdr", bytes), "truncated: header needs 16 bytes");
}

TEST_F(IdxTest, RejectsTruncatedData) {
  expect_error(write_plain("short", make_idx({60000, 28, 28}, 0x08, 1200)),
               "truncated: header declares 47040000 data bytes, file has 1200");
}

TEST_F(IdxTest, RejectsTrailingData) {
  expect_error(write_plain("long", make_idx({2, 3}, 0x08, 7)), "trailing data: header declares 6 data bytes, file has 7");
}

TEST_F(IdxTest, RejectsTruncatedDataInsideGzip) {
  // A well-formed gzip stream whose content is a truncated IDX file: the IDX check catches it.
  expect_error(write_gz("short.gz", make_idx({10, 10}, 0x08, 50)), "truncated: header declares 100 data bytes");
}

TEST_F(IdxTest, RejectsTruncatedGzip) {
  const std::string good = write_gz("whole.gz", make_idx({50, 50}));
  Bytes bytes = read_all(good);
  ASSERT_GT(bytes.size(), 30u);
  bytes.resize(bytes.size() / 2);
  expect_error(write_plain("cut.gz", bytes), "truncated gzip stream");
  // Only the 8-byte trailer (CRC and size) missing.
  Bytes no_trailer = read_all(good);
  no_trailer.resize(no_trailer.size() - 8);
  expect_error(write_plain("notrailer.gz", no_trailer), "truncated gzip stream");
}

TEST_F(IdxTest, RejectsCorruptGzip) {
  Bytes bytes = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  expect_error(write_plain("corrupt.gz", bytes), "gzip error");
  expect_error(write_plain("notgzip.gz", make_idx({2, 2})), "gzip error");
}

TEST_F(IdxTest, RejectsTrailingGarbageAfterGzip) {
  Bytes bytes = read_all(write_gz("x.gz", make_idx({2, 2})));
  bytes.push_back('!');
  bytes.push_back('!');
  expect_error(write_plain("garbage.gz", bytes), "trailing garbage after the gzip stream");
}

TEST_F(IdxTest, AcceptsConcatenatedGzipMembers) {
  const Bytes idx = make_idx({4, 4});
  const Bytes first = read_all(write_gz("p1.gz", Bytes(idx.begin(), idx.begin() + 10)));
  const Bytes second = read_all(write_gz("p2.gz", Bytes(idx.begin() + 10, idx.end())));
  Bytes both = first;
  both.insert(both.end(), second.begin(), second.end());
  EXPECT_EQ(read_idx(write_plain("both.gz", both)).values.size(), 16u);
}

TEST_F(IdxTest, RejectsEmptyFile) {
  expect_error(write_plain("empty", {}), "empty file");
  expect_error(write_plain("empty.gz", {}), "empty file");
  // A valid gzip stream of nothing is an empty IDX file.
  expect_error(write_gz("empty-content.gz", {}), "empty file");
}

TEST_F(IdxTest, RejectsMissingFile) {
  expect_error((dir_ / "nope-idx1-ubyte.gz").string(), "file not found");
  expect_error(dir_.string(), "is a directory");
}

TEST_F(IdxTest, FashionMnistMissingDirectoryMentionsPackage) {
  const std::string missing = (dir_ / "no-such-dir").string();
  try {
    load_fashion_mnist(missing, "test");
    FAIL() << "no error";
  } catch (const InputError& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind(missing + ": ", 0), 0u) << message;
    EXPECT_NE(message.find("dataset-fashion-mnist"), std::string::npos) << message;
  }
  EXPECT_THROW(load_fashion_mnist(kFashionMnistDir, "validation"), UsageError);
}

TEST_F(IdxTest, FashionMnistChecksCountsAgree) {
  write_gz("t10k-images-idx3-ubyte.gz", make_idx({3, 28, 28}));
  Bytes labels = make_idx({2}, 0x08, 0);
  labels.push_back(1);
  labels.push_back(2);
  write_gz("t10k-labels-idx1-ubyte.gz", labels);
  try {
    load_fashion_mnist(dir_.string(), "test");
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("has 2 labels but"), std::string::npos) << e.what();
  }
}

TEST_F(IdxTest, FashionMnistChecksLabelRange) {
  write_plain("train-images-idx3-ubyte", make_idx({2, 28, 28}));
  write_plain("train-labels-idx1-ubyte", Bytes{0, 0, 8, 1, 0, 0, 0, 2, 3, 12});
  try {
    load_fashion_mnist(dir_.string(), "train");
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("label 12 at index 1 is out of range"), std::string::npos) << e.what();
  }
}

TEST_F(IdxTest, FashionMnistClassNames) {
  const auto& names = fashion_mnist_class_names();
  ASSERT_EQ(names.size(), 10u);
  EXPECT_EQ(names[0], "T-shirt/top");
  EXPECT_EQ(names[9], "Ankle boot");
}

TEST_F(IdxTest, RealFashionMnistTestSplit) {
  if (!fs::is_directory(kFashionMnistDir)) GTEST_SKIP() << kFashionMnistDir << " not installed";
  const FashionMnistSplit split = load_fashion_mnist(kFashionMnistDir, "test");
  EXPECT_EQ(split.images.dims, (std::vector<std::int64_t>{10000, 28, 28}));
  EXPECT_EQ(split.labels.dims, (std::vector<std::int64_t>{10000}));
  ASSERT_EQ(split.images.values.size(), 10000u * 28 * 28);
  // The test split is balanced: 1000 of each class.
  std::vector<int> counts(10, 0);
  for (std::uint8_t label : split.labels.values) {
    ASSERT_LT(label, 10);
    ++counts[label];
  }
  for (int c : counts) EXPECT_EQ(c, 1000);
  // Images are real pictures: not blank, and they use the full byte range.
  std::uint8_t max_value = 0;
  std::size_t nonzero = 0;
  for (std::uint8_t v : split.images.values) {
    max_value = std::max(max_value, v);
    nonzero += v != 0;
  }
  EXPECT_EQ(max_value, 255);
  EXPECT_GT(nonzero, split.images.values.size() / 4);
}

}  // namespace
}  // namespace cnnvis
