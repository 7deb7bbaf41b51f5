// Expanding command-line input arguments (files, directories, "-") into image paths.
#include "cnnvis/io/inputs.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include <spdlog/spdlog.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/core/text.h"

namespace cnnvis {

namespace fs = std::filesystem;

namespace {

// Hidden entries (".git", macOS "._photo.jpg" resource forks) are never meant as inputs.
bool is_hidden(const fs::path& p) {
  const std::string name = p.filename().string();
  return !name.empty() && name[0] == '.';
}

std::vector<std::string> expand_directory(const std::string& dir, bool recursive) {
  std::vector<std::string> found;
  bool saw_subdirectory = false;
  std::error_code ec;
  const auto options = fs::directory_options::skip_permission_denied;
  if (recursive) {
    // Directory symlinks are not followed, so a link cycle cannot make the walk endless.
    fs::recursive_directory_iterator it(dir, options, ec), end;
    if (ec) throw InputError(dir + ": cannot list directory (" + ec.message() + ")");
    for (; it != end; it.increment(ec)) {
      if (ec) throw InputError(dir + ": cannot list directory (" + ec.message() + ")");
      const fs::path& p = it->path();
      if (is_hidden(p)) {
        std::error_code dir_ec;
        if (it->is_directory(dir_ec)) it.disable_recursion_pending();
        continue;
      }
      std::error_code file_ec;
      if (it->is_regular_file(file_ec) && has_image_extension(p.string())) found.push_back(p.string());
    }
    if (ec) throw InputError(dir + ": cannot list directory (" + ec.message() + ")");
  } else {
    fs::directory_iterator it(dir, options, ec), end;
    if (ec) throw InputError(dir + ": cannot list directory (" + ec.message() + ")");
    for (; it != end; it.increment(ec)) {
      if (ec) throw InputError(dir + ": cannot list directory (" + ec.message() + ")");
      const fs::path& p = it->path();
      if (is_hidden(p)) continue;
      std::error_code entry_ec;
      if (it->is_directory(entry_ec)) {
        saw_subdirectory = true;
      } else if (it->is_regular_file(entry_ec) && has_image_extension(p.string())) {
        found.push_back(p.string());
      }
    }
    if (ec) throw InputError(dir + ": cannot list directory (" + ec.message() + ")");
  }
  // Directory order is file-system dependent; sorted output makes runs reproducible.
  std::sort(found.begin(), found.end());
  if (found.empty()) {
    if (!recursive && saw_subdirectory) {
      spdlog::warn("{}: no image files directly inside, only subdirectories (use --recursive)", dir);
    } else {
      spdlog::warn("{}: no image files found", dir);
    }
  }
  return found;
}

}  // namespace

bool has_image_extension(const std::string& path) {
  static const std::set<std::string> kExtensions = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff",
                                                    ".webp", ".pgm", ".ppm", ".pbm", ".pnm"};
  const fs::path p(path);
  return kExtensions.count(to_lower(p.extension().string())) != 0;
}

std::vector<std::string> collect_inputs(const std::vector<std::string>& args, bool recursive, std::istream& in) {
  std::vector<std::string> out;
  std::set<std::string> seen;  // lexically normalised, so "a.jpg" and "./a.jpg" count once
  auto add = [&](const std::string& path) {
    if (seen.insert(fs::path(path).lexically_normal().string()).second) out.push_back(path);
  };
  bool stdin_read = false;
  for (const std::string& arg : args) {
    if (arg == "-") {
      if (stdin_read) continue;  // the stream is consumed; a second "-" has nothing left
      stdin_read = true;
      std::string line;
      while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();  // lists written on Windows
        if (line.find_first_not_of(" \t") == std::string::npos) continue;
        add(line);
      }
      continue;
    }
    std::error_code ec;
    if (fs::is_directory(arg, ec)) {
      for (const std::string& path : expand_directory(arg, recursive)) add(path);
    } else {
      add(arg);  // kept even when missing: the run reports it as a failed input
    }
  }
  return out;
}

}  // namespace cnnvis
