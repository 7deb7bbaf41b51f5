// SHA-256 of files and buffers, for recording exactly which weights produced a result.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace cnnvis {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, std::size_t size);
  std::string hex_digest();  // finalises; call once

 private:
  void compress(const std::uint8_t* block);
  std::uint32_t state_[8];
  std::uint8_t buffer_[64];
  std::uint64_t total_bytes_ = 0;
  std::size_t buffered_ = 0;
};

std::string sha256_hex(const void* data, std::size_t size);
// Throws InputError naming the file when it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace cnnvis
