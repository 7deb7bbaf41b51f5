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

std::vector<InputFile> collect_input_files(const std::vector<std::string>& args, bool recursive, std::istream& in) {
  std::vector<InputFile> out;
  // Absolute and lexically normalised, so "a.jpg", "./a.jpg" and "/cwd/a.jpg" count once.
  std::set<std::string> seen;
  std::set<std::string> keys;
  auto add = [&](const std::string& path, std::string key) {
    const std::string normal = fs::path(path).lexically_normal().string();
    std::error_code ec;
    const fs::path absolute = fs::absolute(path, ec);
    if (!seen.insert(ec ? normal : absolute.lexically_normal().string()).second) return;
    if (!keys.insert(key).second) {
      key = normal;
      for (int n = 2; !keys.insert(key).second; ++n) key = normal + "#" + std::to_string(n);
    }
    out.push_back({path, std::move(key)});
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
        add(line, fs::path(line).lexically_normal().string());
      }
      continue;
    }
    std::error_code ec;
    if (fs::is_directory(arg, ec)) {
      // The directory's own name keeps "a/x.jpg" and "b/x.jpg" apart when two folders are given.
      const fs::path dir = fs::path(arg).lexically_normal();
      fs::path name = dir.filename();
      if (name.empty()) name = dir.parent_path().filename();  // "photos/" -> "photos"
      if (name == "." || name == "..") name.clear();
      for (const std::string& path : expand_directory(arg, recursive)) {
        const fs::path below = fs::path(path).lexically_relative(arg);
        add(path, (name / below).lexically_normal().string());
      }
    } else {
      add(arg, fs::path(arg).lexically_normal().string());  // kept even when missing: reported as failed
    }
  }
  return out;
}

std::vector<std::string> collect_inputs(const std::vector<std::string>& args, bool recursive, std::istream& in) {
  std::vector<std::string> out;
  for (auto& file : collect_input_files(args, recursive, in)) out.push_back(std::move(file.path));
  return out;
}

}  // namespace cnnvis
