#include "cnnvis/io/files.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "cnnvis/core/errors.h"

namespace cnnvis {

void write_text_atomically(const std::string& path, const std::string& text) {
  write_bytes_atomically(path, text.data(), text.size());
}

void write_bytes_atomically(const std::string& path, const void* data, std::size_t size) {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) throw OutputError(path + ": cannot write (" + std::strerror(errno) + ")");
  bool ok = size == 0 || std::fwrite(data, 1, size, f) == size;
  int err = ok ? 0 : errno;
  if (std::fclose(f) != 0 && ok) {
    ok = false;
    err = errno;
  }
  if (ok && std::rename(tmp.c_str(), path.c_str()) != 0) {
    ok = false;
    err = errno;
  }
  if (!ok) {
    std::remove(tmp.c_str());
    throw OutputError(path + ": cannot write (" + std::strerror(err) + ")");
  }
}

}  // namespace cnnvis
