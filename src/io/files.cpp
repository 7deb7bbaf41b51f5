#include "cnnvis/io/files.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "cnnvis/core/errors.h"

namespace cnnvis {

void write_text_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) throw OutputError(path + ": cannot write (" + std::strerror(errno) + ")");
  bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
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
