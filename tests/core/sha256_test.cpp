// SHA-256 against the FIPS 180-4 / NIST example vectors, incremental hashing and file hashing.
#include "cnnvis/core/sha256.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cnnvis/core/errors.h"

namespace cnnvis {
namespace {

namespace fs = std::filesystem;

std::string hash_string(const std::string& s) { return sha256_hex(s.data(), s.size()); }

TEST(Sha256, EmptyString) {
  EXPECT_EQ(hash_string(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Sha256, Abc) {
  EXPECT_EQ(hash_string("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256, TwoBlockMessage448Bits) {
  EXPECT_EQ(hash_string("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256, Message896Bits) {
  EXPECT_EQ(hash_string("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopq"
                        "rsmnopqrstnopqrstu"),
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

TEST(Sha256, MillionA) {
  const std::string a(1000000, 'a');
  EXPECT_EQ(hash_string(a), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  // The same, fed in odd-sized pieces that straddle block boundaries.
  Sha256 h;
  std::size_t done = 0;
  std::size_t piece = 1;
  while (done < a.size()) {
    const std::size_t n = std::min(piece, a.size() - done);
    h.update(a.data() + done, n);
    done += n;
    piece = piece * 3 % 1000 + 1;
  }
  EXPECT_EQ(h.hex_digest(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, EverySplitPointGivesTheSameDigest) {
  // Lengths around the 55/56/64-byte padding edge cases, split at every position.
  for (std::size_t len : {55u, 56u, 57u, 63u, 64u, 65u, 119u, 120u, 128u}) {
    std::string msg(len, '\0');
    for (std::size_t i = 0; i < len; ++i) msg[i] = static_cast<char>('a' + i % 26);
    const std::string whole = hash_string(msg);
    for (std::size_t cut = 0; cut <= len; ++cut) {
      Sha256 h;
      h.update(msg.data(), cut);
      h.update(msg.data() + cut, len - cut);
      ASSERT_EQ(h.hex_digest(), whole) << "len " << len << " cut " << cut;
    }
  }
}

TEST(Sha256, Padding55And56Bytes) {
  // Reference digests from sha256sum.
  EXPECT_EQ(hash_string(std::string(55, 'a')), "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
  EXPECT_EQ(hash_string(std::string(56, 'a')), "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
  EXPECT_EQ(hash_string(std::string(64, 'a')), "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
}

class Sha256FileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cnnvis_sha256_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(Sha256FileTest, FileLargerThanOneChunk) {
  // 2 MiB + 17 bytes, so the 1 MiB streaming loop runs three times with a partial last chunk.
  std::vector<std::uint8_t> data((1u << 20) * 2 + 17);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::uint8_t>((i * 7 + 3) % 251);
  const std::string path = (dir_ / "big.bin").string();
  {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  }
  // Reference digest computed with Python's hashlib for the same byte pattern.
  EXPECT_EQ(sha256_file(path), "3281010ab9b2f95760b58aa92ba412ae06ca06e52a76e7a0500cde55890502e5");
  EXPECT_EQ(sha256_file(path), sha256_hex(data.data(), data.size()));
}

TEST_F(Sha256FileTest, EmptyFile) {
  const std::string path = (dir_ / "empty.bin").string();
  std::ofstream(path).close();
  EXPECT_EQ(sha256_file(path), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_F(Sha256FileTest, MissingFileThrowsInputErrorNamingIt) {
  const std::string path = (dir_ / "nope.safetensors").string();
  try {
    sha256_file(path);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
    EXPECT_NE(msg.find("No such file"), std::string::npos) << msg;
  }
}

TEST_F(Sha256FileTest, DirectoryThrowsInputError) {
  try {
    sha256_file(dir_.string());
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind(dir_.string() + ": ", 0), 0u) << msg;
    EXPECT_NE(msg.find("directory"), std::string::npos) << msg;
  }
}

}  // namespace
}  // namespace cnnvis
