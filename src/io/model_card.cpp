// Model cards: reading with field-by-field validation, so that a typo in a card is reported by name
// instead of surfacing later as a wrong prediction.
#include "cnnvis/io/model_card.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cnnvis/core/errors.h"
#include "cnnvis/io/files.h"
#include "cnnvis/core/text.h"

namespace cnnvis {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int kMaxInputSide = 4096;

class CardReader {
 public:
  CardReader(const json& j, const std::string& name) : j_(j), name_(name) {}

  [[noreturn]] void fail(const std::string& field, const std::string& problem) const {
    throw ModelCardError(name_ + ": field '" + field + "' " + problem);
  }

  const json* get(const char* field) const {
    auto it = j_.find(field);
    return it == j_.end() ? nullptr : &*it;
  }

  void required_string(const char* field, std::string* out) const {
    const json* v = get(field);
    if (v == nullptr) throw ModelCardError(name_ + ": missing required field '" + field + "'");
    if (!v->is_string() || v->get_ref<const std::string&>().empty()) fail(field, "must be a non-empty string");
    *out = v->get<std::string>();
  }

  void optional_string(const char* field, std::string* out) const {
    const json* v = get(field);
    if (v == nullptr || v->is_null()) return;
    if (!v->is_string()) fail(field, "must be a string");
    *out = v->get<std::string>();
  }

  void optional_bool(const char* field, bool* out) const {
    const json* v = get(field);
    if (v == nullptr) return;
    if (!v->is_boolean()) fail(field, "must be true or false");
    *out = v->get<bool>();
  }

  void optional_string_list(const char* field, std::vector<std::string>* out) const {
    const json* v = get(field);
    if (v == nullptr || v->is_null()) return;
    if (!v->is_array()) fail(field, "must be an array of strings");
    out->clear();
    for (const json& item : *v) {
      if (!item.is_string()) fail(field, "must be an array of strings");
      out->push_back(item.get<std::string>());
    }
  }

  void optional_triple(const char* field, bool positive, std::array<float, 3>* out) const {
    const json* v = get(field);
    if (v == nullptr) return;
    if (!v->is_array() || v->size() != 3) fail(field, "must be 3 numbers");
    std::array<float, 3> values{};
    for (std::size_t i = 0; i < 3; ++i) {
      const json& item = (*v)[i];
      if (!item.is_number()) fail(field, "must be 3 numbers");
      const double x = item.get<double>();
      if (!std::isfinite(x)) fail(field, "must be 3 finite numbers");
      if (positive && !(x > 0)) fail(field, "must be 3 numbers greater than 0");
      values[i] = static_cast<float>(x);
    }
    *out = values;
  }

 private:
  const json& j_;
  const std::string& name_;
};

bool is_hex64(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// Line and column (1-based) of a byte offset, for JSON syntax errors a person can find in an editor.
void line_and_column(const std::string& text, std::size_t byte, std::size_t* line, std::size_t* column) {
  *line = 1;
  *column = 1;
  const std::size_t end = std::min(byte, text.size());
  for (std::size_t i = 0; i < end; ++i) {
    if (text[i] == '\n') {
      ++*line;
      *column = 1;
    } else {
      ++*column;
    }
  }
}

}  // namespace

std::string ModelCard::label(int index) const {
  if (index >= 0 && static_cast<std::size_t>(index) < labels.size()) return labels[static_cast<std::size_t>(index)];
  return "class " + std::to_string(index);
}

int ModelCard::find_label(const std::string& name) const {
  const std::string wanted = to_lower(name);
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (to_lower(labels[i]) == wanted) return static_cast<int>(i);
  }
  return -1;
}

std::string ModelCard::weights_path() const {
  if (weights_file.empty()) return "";
  const fs::path file(weights_file);
  if (file.is_absolute() || card_path.empty()) return file.string();
  return (fs::path(card_path).parent_path() / file).string();
}

ModelCard model_card_from_json(const json& j, const std::string& source_name) {
  if (!j.is_object()) throw ModelCardError(source_name + ": a model card must be a JSON object");
  const CardReader r(j, source_name);
  ModelCard card;
  r.required_string("name", &card.name);
  r.required_string("architecture", &card.architecture);

  if (const json* v = r.get("input_size")) {
    bool ok = v->is_array() && v->size() == 2;
    for (std::size_t i = 0; ok && i < 2; ++i) {
      const json& side = (*v)[i];
      ok = side.is_number_integer() && side.get<std::int64_t>() > 0 && side.get<std::int64_t>() <= kMaxInputSide;
    }
    if (!ok) r.fail("input_size", "must be [height, width], two integers from 1 to " + std::to_string(kMaxInputSide));
    card.input_height = (*v)[0].get<int>();
    card.input_width = (*v)[1].get<int>();
  }

  r.optional_string("channel_order", &card.channel_order);
  if (card.channel_order != "RGB" && card.channel_order != "BGR") r.fail("channel_order", "must be \"RGB\" or \"BGR\"");

  if (const json* v = r.get("input_range")) {
    if (!v->is_number() || !std::isfinite(v->get<double>()) || !(v->get<double>() > 0)) {
      r.fail("input_range", "must be a number greater than 0");
    }
    card.input_range = v->get<float>();
  }
  r.optional_triple("mean", false, &card.mean);
  r.optional_triple("std", true, &card.std);
  r.optional_bool("transform_input", &card.transform_input);
  r.optional_string_list("labels", &card.labels);
  r.optional_string("default_layer", &card.default_layer);
  r.optional_string("weights_file", &card.weights_file);

  if (const json* v = r.get("weights_sha256"); v != nullptr && !v->is_null()) {
    if (!v->is_string() || !is_hex64(v->get<std::string>())) {
      r.fail("weights_sha256", "must be 64 hexadecimal digits or null");
    }
    card.weights_sha256 = to_lower(v->get<std::string>());  // sha256_hex() gives lower case
  }
  r.optional_string_list("ignore_weight_prefixes", &card.ignore_weight_prefixes);
  r.optional_string("source", &card.source);
  // Unknown keys are ignored on purpose: newer exporters may add fields.
  return card;
}

ModelCard parse_model_card(const std::string& text, const std::string& name) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    // e.byte is one past the character that failed.
    std::size_t line = 0, column = 0;
    line_and_column(text, e.byte > 0 ? e.byte - 1 : 0, &line, &column);
    throw ModelCardError(name + ": not valid JSON (line " + std::to_string(line) + ", column " +
                         std::to_string(column) + ")");
  } catch (const json::out_of_range&) {
    // nlohmann throws this (not parse_error) for a number beyond double's range, e.g. 1e999.
    throw ModelCardError(name + ": not valid JSON (a number is out of range)");
  }
  return model_card_from_json(j, name);
}

ModelCard read_model_card(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw ModelCardError(path + ": is a directory, not a model card");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ModelCardError(path + ": cannot read model card (" + std::strerror(errno) + ")");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  ModelCard card = parse_model_card(buffer.str(), path);
  card.card_path = path;
  return card;
}

json model_card_to_json(const ModelCard& card) {
  json j = json::object();
  j["name"] = card.name;
  j["architecture"] = card.architecture;
  j["input_size"] = {card.input_height, card.input_width};
  j["channel_order"] = card.channel_order;
  j["input_range"] = card.input_range;
  j["mean"] = card.mean;
  j["std"] = card.std;
  j["transform_input"] = card.transform_input;
  j["labels"] = card.labels;
  j["default_layer"] = card.default_layer;
  j["weights_file"] = card.weights_file;
  j["weights_sha256"] = card.weights_sha256.empty() ? json(nullptr) : json(card.weights_sha256);
  j["ignore_weight_prefixes"] = card.ignore_weight_prefixes;
  j["source"] = card.source;
  return j;
}

void write_model_card(const ModelCard& card, const std::string& path) {
  std::string text;
  try {
    text = model_card_to_json(card).dump(2) + "\n";
  } catch (const json::type_error&) {
    throw OutputError(path + ": model card holds text that is not valid UTF-8");
  }
  // Through a temporary file and rename(), so an interrupted export never leaves a truncated card.
  write_text_atomically(path, text);
}

}  // namespace cnnvis
