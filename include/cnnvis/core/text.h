// Small string helpers shared by the CLI and the library.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cnnvis {

std::vector<std::string> split(std::string_view text, char separator);
std::string join(const std::vector<std::string>& parts, std::string_view separator);
std::string to_lower(std::string_view text);
// A file-name-safe version of text: keeps [A-Za-z0-9._-], maps everything else to '_', never
// returns "", "." or "..", and never contains a path separator.
std::string safe_file_stem(std::string_view text);
// One CSV field (RFC 4180): quoted, with quotes doubled, when it holds a comma, quote or line break.
std::string csv_field(std::string_view text);
// "a, b, c" limited to max_items entries, then ", ... (N more)".
std::string list_for_message(const std::vector<std::string>& items, std::size_t max_items = 20);
// A tensor shape for messages: "2 x 512 x 14 x 14"; "a scalar" when it has no dimensions.
std::string format_shape(const std::vector<std::int64_t>& shape);
// Levenshtein distance (insertions, deletions, substitutions of one byte), for "nearest names" hints.
std::size_t edit_distance(std::string_view a, std::string_view b);

}  // namespace cnnvis
