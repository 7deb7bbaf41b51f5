// A fresh, empty directory under the system's temporary directory for one test, removed afterwards.
// Names carry the process id and a counter, so tests running side by side never share one.
#pragma once

#include <filesystem>
#include <string>
#include <system_error>

#include <unistd.h>

namespace cnnvis::testing {

class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "cnnvis_test") {
    path_ = std::filesystem::temp_directory_path() /
            (prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  static inline int counter_ = 0;
};

}  // namespace cnnvis::testing
