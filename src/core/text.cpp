// Small string helpers shared by the CLI and the library.
#include "cnnvis/core/text.h"

#include <algorithm>

namespace cnnvis {

namespace {

// Output names get suffixes such as ".gradcam.png" appended and must stay well under the usual
// 255-byte file name limit.
constexpr std::size_t kMaxStemBytes = 120;

bool is_stem_char(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '-';
}

}  // namespace

std::vector<std::string> split(std::string_view text, char separator) {
  // Like Python's str.split(sep): empty fields are kept, so "a,,b" has three parts and "" has one.
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (;;) {
    const std::size_t pos = text.find(separator, start);
    if (pos == std::string_view::npos) {
      parts.emplace_back(text.substr(start));
      return parts;
    }
    parts.emplace_back(text.substr(start, pos - start));
    start = pos + 1;
  }
}

std::string join(const std::vector<std::string>& parts, std::string_view separator) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out.append(separator);
    out.append(parts[i]);
  }
  return out;
}

std::string to_lower(std::string_view text) {
  // ASCII only on purpose: locale-dependent lowering would make option parsing machine-dependent.
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string safe_file_stem(std::string_view text) {
  std::string out;
  out.reserve(std::min(text.size(), kMaxStemBytes));
  for (std::size_t i = 0; i < text.size() && out.size() < kMaxStemBytes; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (is_stem_char(c)) {
      out.push_back(static_cast<char>(c));
    } else if (c >= 0x80 && c < 0xC0) {
      // A UTF-8 continuation byte: its lead byte already produced the '_', so one non-ASCII
      // character becomes one '_' ("café" -> "caf_").
      continue;
    } else {
      out.push_back('_');
    }
  }
  if (out.empty()) return "_";
  if (out == ".") return "_";
  if (out == "..") return "__";
  return out;
}

std::string list_for_message(const std::vector<std::string>& items, std::size_t max_items) {
  std::string out;
  const std::size_t shown = std::min(items.size(), max_items);
  for (std::size_t i = 0; i < shown; ++i) {
    if (i > 0) out += ", ";
    out += items[i];
  }
  if (items.size() > shown) {
    if (shown > 0) out += ", ";
    out += "... (" + std::to_string(items.size() - shown) + " more)";
  }
  return out;
}

std::string csv_field(std::string_view text) {
  if (text.find_first_of(",\"\n\r") == std::string_view::npos) return std::string(text);
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string format_shape(const std::vector<std::int64_t>& shape) {
  std::string text;
  for (auto d : shape) text += (text.empty() ? "" : " x ") + std::to_string(d);
  return text.empty() ? "a scalar" : text;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace cnnvis
