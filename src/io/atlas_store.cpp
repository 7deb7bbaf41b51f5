#include "cnnvis/io/atlas_store.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <numeric>
#include <sstream>

#include "cnnvis/core/errors.h"
#include "cnnvis/core/text.h"
#include "cnnvis/io/canvas.h"
#include "cnnvis/io/files.h"
#include "cnnvis/io/npy.h"

namespace cnnvis {

namespace fs = std::filesystem;

namespace {

constexpr const char* kInfoFile = "atlas_collection.json";
constexpr const char* kActivationsFile = "atlas_activations.npy";
constexpr const char* kAttrClassesFile = "atlas_attr_classes.npy";
constexpr const char* kAttrValuesFile = "atlas_attr_values.npy";
constexpr const char* kSamplesFile = "atlas_samples.csv";
constexpr const char* kSamplesHeader = "index,key,path,sample,x,y,predicted";

// RFC 4180 records: quoted fields may hold commas, quotes ("") and line breaks.
std::vector<std::vector<std::string>> parse_csv(const std::string& text, const std::string& name) {
  std::vector<std::vector<std::string>> records;
  std::vector<std::string> record;
  std::string field;
  bool quoted = false, field_started = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          quoted = false;
        }
      } else {
        field += c;
      }
      continue;
    }
    if (c == '"' && !field_started) {
      quoted = true;
      field_started = true;
    } else if (c == ',') {
      record.push_back(std::move(field));
      field.clear();
      field_started = false;
    } else if (c == '\n') {
      record.push_back(std::move(field));
      field.clear();
      field_started = false;
      records.push_back(std::move(record));
      record.clear();
    } else if (c != '\r') {
      field += c;
      field_started = true;
    }
  }
  if (quoted) throw InputError(name + ": unterminated quoted field");
  if (field_started || !record.empty()) {
    record.push_back(std::move(field));
    records.push_back(std::move(record));
  }
  return records;
}

int parse_int_field(const std::string& text, const std::string& name, std::size_t line) {
  try {
    std::size_t used = 0;
    const long long v = std::stoll(text, &used);
    if (used != text.size() || v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max()) throw 0;
    return static_cast<int>(v);
  } catch (...) {
    throw InputError(name + ": record " + std::to_string(line) + ": '" + text + "' is not an integer");
  }
}

nlohmann::json info_to_json(const AtlasCollectionInfo& info) {
  return {{"model", info.model},
          {"layer", info.layer},
          {"weights_sha256", info.weights_sha256},
          {"channels", info.channels},
          {"num_classes", info.num_classes},
          {"attribution_classes", info.attribution_classes},
          {"labels", info.labels},
          {"options", info.options}};
}

AtlasCollectionInfo info_from_json(const nlohmann::json& j, const std::string& name) {
  AtlasCollectionInfo info;
  try {
    info.model = j.at("model").get<std::string>();
    info.layer = j.at("layer").get<std::string>();
    info.weights_sha256 = j.at("weights_sha256").get<std::string>();
    info.channels = j.at("channels").get<int>();
    info.num_classes = j.at("num_classes").get<int>();
    info.attribution_classes = j.at("attribution_classes").get<int>();
    info.labels = j.at("labels").get<std::vector<std::string>>();
    if (j.contains("options")) info.options = j.at("options");
  } catch (const nlohmann::json::exception& e) {
    throw InputError(name + ": not an atlas collection (" + std::string(e.what()) + ")");
  }
  if (info.channels <= 0 || info.channels > 1000000 || info.num_classes < 0 || info.attribution_classes < 0 ||
      info.attribution_classes > std::max(1, info.num_classes)) {
    throw InputError(name + ": inconsistent sizes (channels " + std::to_string(info.channels) + ", classes " +
                     std::to_string(info.num_classes) + ", attribution classes " +
                     std::to_string(info.attribution_classes) + ")");
  }
  return info;
}

// Checks an array read from a part: its dtype, rank and sizes.
void expect_shape(const NpyArray& a, const std::string& name, std::int64_t rows, std::int64_t cols) {
  if (a.shape.size() != 2 || a.shape[0] != rows || a.shape[1] != cols) {
    std::string got;
    for (std::size_t i = 0; i < a.shape.size(); ++i) got += (i ? " x " : "") + std::to_string(a.shape[i]);
    throw InputError(name + ": expected " + std::to_string(rows) + " x " + std::to_string(cols) + ", got " +
                     (got.empty() ? "a scalar" : got));
  }
}

}  // namespace

AtlasCollectionWriter::AtlasCollectionWriter(const std::string& dir, AtlasCollectionInfo info)
    : dir_(dir), info_(std::move(info)) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) throw OutputError(dir_ + ": cannot create directory (" + ec.message() + ")");
  // A stale description would make the directory look complete while the arrays are being rewritten.
  fs::remove(fs::path(dir_) / kInfoFile, ec);
  const int k = info_.attribution_classes;
  activations_ = std::make_unique<NpyRowWriter>((fs::path(dir_) / kActivationsFile).string(), "<f4",
                                                std::vector<std::int64_t>{info_.channels});
  attr_classes_ = std::make_unique<NpyRowWriter>((fs::path(dir_) / kAttrClassesFile).string(), "<i8",
                                                 std::vector<std::int64_t>{k});
  attr_values_ = std::make_unique<NpyRowWriter>((fs::path(dir_) / kAttrValuesFile).string(), "<f4",
                                                std::vector<std::int64_t>{k});
  samples_csv_ = std::string(kSamplesHeader) + "\n";
}

AtlasCollectionWriter::~AtlasCollectionWriter() = default;

std::int64_t AtlasCollectionWriter::rows() const { return rows_; }

void AtlasCollectionWriter::add(const AtlasSample& s, const float* activation, const std::int64_t* attr_classes,
                                const float* attr_values) {
  activations_->append_f32(activation, 1);
  attr_classes_->append_i64(attr_classes, 1);
  attr_values_->append_f32(attr_values, 1);
  samples_csv_ += std::to_string(rows_) + ',' + csv_field(s.key) + ',' + csv_field(s.path) + ',' +
                  std::to_string(s.sample) + ',' + std::to_string(s.x) + ',' + std::to_string(s.y) + ',' +
                  std::to_string(s.predicted) + '\n';
  ++rows_;
}

void AtlasCollectionWriter::finish(const nlohmann::json& extra) {
  activations_->finish();
  attr_classes_->finish();
  attr_values_->finish();
  write_text_atomically((fs::path(dir_) / kSamplesFile).string(), samples_csv_);
  nlohmann::json j = info_to_json(info_);
  j["rows"] = rows_;
  if (extra.is_object()) j.update(extra);
  write_text_atomically((fs::path(dir_) / kInfoFile).string(), j.dump(1) + "\n");
}

std::vector<AtlasSample> parse_atlas_samples_csv(const std::string& text, const std::string& name) {
  const auto records = parse_csv(text, name);
  if (records.empty() || records[0].size() != 7 || records[0][0] != "index") {
    throw InputError(name + ": expected the header '" + std::string(kSamplesHeader) + "'");
  }
  std::vector<AtlasSample> samples;
  for (std::size_t r = 1; r < records.size(); ++r) {
    const auto& f = records[r];
    if (f.size() != 7) {
      throw InputError(name + ": record " + std::to_string(r + 1) + " has " + std::to_string(f.size()) +
                       " fields, expected 7");
    }
    AtlasSample s;
    s.key = f[1];
    s.path = f[2];
    s.sample = parse_int_field(f[3], name, r + 1);
    s.x = parse_int_field(f[4], name, r + 1);
    s.y = parse_int_field(f[5], name, r + 1);
    s.predicted = parse_int_field(f[6], name, r + 1);
    samples.push_back(std::move(s));
  }
  return samples;
}

AtlasCollection read_atlas_collections(const std::vector<std::string>& dirs) {
  if (dirs.empty()) throw UsageError("no atlas collection directory given");
  struct Part {
    AtlasCollectionInfo info;
    std::int64_t rows = 0;
    std::vector<float> activations, attr_values;
    std::vector<std::int64_t> attr_classes;
    std::vector<AtlasSample> samples;
  };
  std::vector<Part> parts;
  for (const std::string& dir : dirs) {
    const std::string info_path = (fs::path(dir) / kInfoFile).string();
    std::ifstream in(info_path);
    if (!in) {
      throw InputError(info_path + ": missing: not an atlas collection, or its run did not finish");
    }
    std::stringstream text;
    text << in.rdbuf();
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text.str());
    } catch (const nlohmann::json::exception& e) {
      throw InputError(info_path + ": malformed JSON (" + std::string(e.what()) + ")");
    }
    Part p;
    p.info = info_from_json(j, info_path);
    try {
      p.rows = j.at("rows").get<std::int64_t>();
    } catch (const nlohmann::json::exception&) {
      throw InputError(info_path + ": no row count");
    }
    const int k = p.info.attribution_classes;
    const std::string act_path = (fs::path(dir) / kActivationsFile).string();
    const NpyArray act = read_npy(act_path);
    if (act.dtype != "<f4") throw InputError(act_path + ": expected float32, got " + act.dtype);
    expect_shape(act, act_path, p.rows, p.info.channels);
    p.activations = act.to_float();
    for (std::size_t i = 0; i < p.activations.size(); ++i) {
      if (!std::isfinite(p.activations[i])) {
        throw InputError(act_path + ": non-finite activation in row " + std::to_string(i / p.info.channels));
      }
    }
    const std::string cls_path = (fs::path(dir) / kAttrClassesFile).string();
    const NpyArray cls = read_npy(cls_path);
    if (cls.dtype != "<i8") throw InputError(cls_path + ": expected int64, got " + cls.dtype);
    expect_shape(cls, cls_path, p.rows, k);
    p.attr_classes.resize(static_cast<std::size_t>(p.rows * k));
    if (!p.attr_classes.empty()) std::memcpy(p.attr_classes.data(), cls.bytes.data(), p.attr_classes.size() * 8);
    for (std::int64_t c : p.attr_classes) {
      if (c < 0 || c >= p.info.num_classes) throw InputError(cls_path + ": class " + std::to_string(c) + " out of range");
    }
    const std::string val_path = (fs::path(dir) / kAttrValuesFile).string();
    const NpyArray val = read_npy(val_path);
    if (val.dtype != "<f4") throw InputError(val_path + ": expected float32, got " + val.dtype);
    expect_shape(val, val_path, p.rows, k);
    p.attr_values = val.to_float();

    const std::string csv_path = (fs::path(dir) / kSamplesFile).string();
    std::ifstream csv_in(csv_path, std::ios::binary);
    if (!csv_in) throw InputError(csv_path + ": missing");
    std::stringstream csv_text;
    csv_text << csv_in.rdbuf();
    p.samples = parse_atlas_samples_csv(csv_text.str(), csv_path);
    if (static_cast<std::int64_t>(p.samples.size()) != p.rows) {
      throw InputError(csv_path + ": " + std::to_string(p.samples.size()) + " samples for " + std::to_string(p.rows) +
                       " activation rows");
    }
    parts.push_back(std::move(p));
  }

  AtlasCollection out;
  out.info = parts[0].info;
  out.parts = dirs;
  for (std::size_t i = 1; i < parts.size(); ++i) {
    const AtlasCollectionInfo& a = parts[0].info;
    const AtlasCollectionInfo& b = parts[i].info;
    std::string what;
    if (a.model != b.model) what = "model " + a.model + " vs " + b.model;
    else if (a.layer != b.layer) what = "layer " + a.layer + " vs " + b.layer;
    else if (a.weights_sha256 != b.weights_sha256) what = "weights (sha256 differs)";
    else if (a.channels != b.channels) what = "channels";
    else if (a.num_classes != b.num_classes) what = "number of classes";
    else if (a.attribution_classes != b.attribution_classes) what = "attribution classes per sample";
    if (!what.empty()) {
      throw UsageError("atlas collections " + dirs[0] + " and " + dirs[i] + " cannot be merged: " + what);
    }
  }
  // Sort every sample of every part by (key, sample); duplicates (a shard collected twice) kept once.
  struct Ref {
    std::size_t part;
    std::int64_t row;
  };
  std::vector<Ref> refs;
  for (std::size_t p = 0; p < parts.size(); ++p)
    for (std::int64_t r = 0; r < parts[p].rows; ++r) refs.push_back({p, r});
  auto sample_of = [&](const Ref& r) -> const AtlasSample& { return parts[r.part].samples[r.row]; };
  std::stable_sort(refs.begin(), refs.end(), [&](const Ref& a, const Ref& b) {
    const AtlasSample& sa = sample_of(a);
    const AtlasSample& sb = sample_of(b);
    if (sa.key != sb.key) return sa.key < sb.key;
    return sa.sample < sb.sample;
  });
  refs.erase(std::unique(refs.begin(), refs.end(),
                         [&](const Ref& a, const Ref& b) {
                           return sample_of(a).key == sample_of(b).key && sample_of(a).sample == sample_of(b).sample;
                         }),
             refs.end());
  const int c = out.info.channels, k = out.info.attribution_classes;
  out.rows = static_cast<std::int64_t>(refs.size());
  out.activations.reserve(static_cast<std::size_t>(out.rows * c));
  out.attr_classes.reserve(static_cast<std::size_t>(out.rows * k));
  out.attr_values.reserve(static_cast<std::size_t>(out.rows * k));
  for (const Ref& r : refs) {
    const Part& p = parts[r.part];
    out.activations.insert(out.activations.end(), p.activations.begin() + r.row * c,
                           p.activations.begin() + (r.row + 1) * c);
    out.attr_classes.insert(out.attr_classes.end(), p.attr_classes.begin() + r.row * k,
                            p.attr_classes.begin() + (r.row + 1) * k);
    out.attr_values.insert(out.attr_values.end(), p.attr_values.begin() + r.row * k,
                           p.attr_values.begin() + (r.row + 1) * k);
    out.samples.push_back(p.samples[r.row]);
  }
  return out;
}

std::uint64_t atlas_key_hash(const std::string& key, std::uint64_t seed) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : key) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return SplitMix64(h ^ SplitMix64(seed).next()).next();
}

int top_attributed_class(const AtlasCollection& c, std::int64_t row) {
  const int k = c.info.attribution_classes;
  int best = -1;
  float best_value = -std::numeric_limits<float>::infinity();
  for (int j = 0; j < k; ++j) {
    const float v = c.attr_values[row * k + j];
    if (v > best_value) {
      best_value = v;
      best = static_cast<int>(c.attr_classes[row * k + j]);
    }
  }
  return best;
}

float attribution_to(const AtlasCollection& c, std::int64_t row, int cls) {
  const int k = c.info.attribution_classes;
  for (int j = 0; j < k; ++j)
    if (c.attr_classes[row * k + j] == cls) return c.attr_values[row * k + j];
  return std::numeric_limits<float>::quiet_NaN();
}

}  // namespace cnnvis
