#include "cnnvis/models/torchscript_archive.h"

#include <algorithm>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include <zlib.h>

#include "cnnvis/core/errors.h"

namespace cnnvis {

namespace {

// Random access to the archive's bytes: memory (the fuzz target, tests) or a file read piece by piece.
class Source {
 public:
  virtual ~Source() = default;
  virtual std::uint64_t size() const = 0;
  // Reads n bytes at `at` into out; false when they are not all there.
  virtual bool read(std::uint64_t at, std::size_t n, std::uint8_t* out) const = 0;
};

class MemorySource final : public Source {
 public:
  MemorySource(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  std::uint64_t size() const override { return size_; }
  bool read(std::uint64_t at, std::size_t n, std::uint8_t* out) const override {
    if (at > size_ || n > size_ - at) return false;
    std::copy(data_ + at, data_ + at + n, out);
    return true;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
};

class FileSource final : public Source {
 public:
  FileSource(std::ifstream& file, std::uint64_t size) : file_(file), size_(size) {}
  std::uint64_t size() const override { return size_; }
  bool read(std::uint64_t at, std::size_t n, std::uint8_t* out) const override {
    if (at > size_ || n > size_ - at) return false;
    file_.clear();
    file_.seekg(static_cast<std::streamoff>(at));
    file_.read(reinterpret_cast<char*>(out), static_cast<std::streamsize>(n));
    return static_cast<std::size_t>(file_.gcount()) == n;
  }

 private:
  std::ifstream& file_;
  std::uint64_t size_;
};

std::uint64_t le(const std::uint8_t* p, std::size_t bytes) {
  std::uint64_t value = 0;
  for (std::size_t k = 0; k < bytes; ++k) value |= static_cast<std::uint64_t>(p[k]) << (8 * k);
  return value;
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// --- zip

struct Entry {
  std::string name;  // without the archive's top folder
  std::uint16_t method = 0;
  std::uint64_t compressed = 0, uncompressed = 0, local_header = 0;
};

class Archive {
 public:
  Archive(const Source& source, std::string file) : source_(source), file_(std::move(file)) {}

  [[noreturn]] void fail(const std::string& problem) const {
    throw WeightsError(file_ + ": not a TorchScript model (" + problem + ")");
  }

  // Reads the central directory; false when there is none (not a zip).
  bool open() {
    const std::uint64_t size = source_.size();
    if (size < 22) return false;
    // The end-of-central-directory record: 22 bytes and a comment of at most 65535 bytes at the end.
    const std::size_t tail_size = static_cast<std::size_t>(std::min<std::uint64_t>(size, 22 + 65535));
    std::vector<std::uint8_t> tail(tail_size);
    if (!source_.read(size - tail_size, tail_size, tail.data())) return false;
    std::optional<std::size_t> eocd;
    for (std::size_t at = tail_size - 22 + 1; at-- > 0;) {
      if (le(&tail[at], 4) == 0x06054b50) {
        eocd = at;
        break;
      }
    }
    if (!eocd) return false;
    const std::uint8_t* end = &tail[*eocd];
    std::uint64_t entries = le(end + 10, 2), directory_size = le(end + 12, 4), directory_at = le(end + 16, 4);
    // ZIP64 (PyTorch writes its records always): a locator 20 bytes before, pointing at the zip64 record.
    const std::uint64_t eocd_at = size - tail_size + *eocd;
    std::uint8_t locator[20];
    if (eocd_at >= 20 && source_.read(eocd_at - 20, 20, locator) && le(locator, 4) == 0x07064b50) {
      std::uint8_t record[56];
      const std::uint64_t record_at = le(locator + 8, 8);
      if (!source_.read(record_at, 56, record) || le(record, 4) != 0x06064b50) {
        fail("zip64 end of central directory at byte " + std::to_string(record_at) + " is missing");
      }
      entries = le(record + 32, 8);
      directory_size = le(record + 40, 8);
      directory_at = le(record + 48, 8);
    }
    if (directory_at > size || directory_size > size - directory_at) {
      fail("zip central directory of " + std::to_string(directory_size) + " bytes at byte " +
           std::to_string(directory_at) + " is beyond the file's " + std::to_string(size) + " bytes");
    }
    std::vector<std::uint8_t> directory(static_cast<std::size_t>(directory_size));
    if (!source_.read(directory_at, directory.size(), directory.data())) fail("unreadable zip central directory");
    std::size_t at = 0;
    for (std::uint64_t k = 0; k < entries; ++k) {
      const std::string which = "zip central directory entry " + std::to_string(k);
      if (directory.size() - at < 46 || le(&directory[at], 4) != 0x02014b50) fail(which + " is cut short");
      const std::uint8_t* e = &directory[at];
      const std::size_t name_size = le(e + 28, 2), extra_size = le(e + 30, 2), comment_size = le(e + 32, 2);
      if (directory.size() - at - 46 < name_size + extra_size + comment_size) fail(which + " is cut short");
      Entry entry;
      entry.method = static_cast<std::uint16_t>(le(e + 10, 2));
      entry.compressed = le(e + 20, 4);
      entry.uncompressed = le(e + 24, 4);
      entry.local_header = le(e + 42, 4);
      std::string full(reinterpret_cast<const char*>(e + 46), name_size);
      // The zip64 extra field holds, in this order, whichever of the three sizes said 0xFFFFFFFF.
      const std::uint8_t* extra = e + 46 + name_size;
      for (std::size_t x = 0; x + 4 <= extra_size;) {
        const std::size_t id = le(extra + x, 2), length = le(extra + x + 2, 2);
        if (x + 4 + length > extra_size) break;
        if (id == 0x0001) {
          std::size_t field = x + 4;
          for (std::uint64_t* value : {&entry.uncompressed, &entry.compressed, &entry.local_header}) {
            if (*value != 0xFFFFFFFF) continue;
            if (field + 8 > x + 4 + length) fail(which + " (" + full + "): zip64 field cut short");
            *value = le(extra + field, 8);
            field += 8;
          }
        }
        x += 4 + length;
      }
      at += 46 + name_size + extra_size + comment_size;
      // LibTorch names records after the top folder, which the first entry sets.
      const std::size_t slash = full.find('/');
      if (k == 0 && slash != std::string::npos) prefix_ = full.substr(0, slash + 1);
      if (prefix_.empty() || full.compare(0, prefix_.size(), prefix_) != 0) continue;
      entry.name = full.substr(prefix_.size());
      index_.emplace(entry.name, entries_.size());
      entries_.push_back(std::move(entry));
    }
    return true;
  }

  const std::vector<Entry>& entries() const { return entries_; }

  const Entry* find(const std::string& name) const {
    const auto it = index_.find(name);
    return it == index_.end() ? nullptr : &entries_[it->second];
  }

  // Where the record's data starts; fails when the local header or the data lie beyond the file.
  std::uint64_t data_start(const Entry& entry) const {
    std::uint8_t header[30];
    if (!source_.read(entry.local_header, 30, header) || le(header, 4) != 0x04034b50) {
      fail("record " + entry.name + ": no zip local header at byte " + std::to_string(entry.local_header));
    }
    const std::uint64_t start = entry.local_header + 30 + le(header + 26, 2) + le(header + 28, 2);
    if (start > source_.size() || entry.compressed > source_.size() - start) {
      fail("record " + entry.name + ": its " + std::to_string(entry.compressed) + " bytes at byte " +
           std::to_string(start) + " run beyond the file's " + std::to_string(source_.size()) + " bytes");
    }
    return start;
  }

  // The record's bytes (stored or deflated); nullopt for a compression method LibTorch's reader does not
  // know either (it reports that).
  std::optional<std::vector<std::uint8_t>> read(const Entry& entry) const {
    const std::uint64_t start = data_start(entry);
    const std::string where = "record " + entry.name + ": ";
    if (entry.method == 0) {
      if (entry.compressed != entry.uncompressed) {
        fail(where + "stored with " + std::to_string(entry.compressed) + " bytes but says " +
             std::to_string(entry.uncompressed));
      }
      std::vector<std::uint8_t> bytes(static_cast<std::size_t>(entry.compressed));
      if (!source_.read(start, bytes.size(), bytes.data())) fail(where + "unreadable");
      return bytes;
    }
    if (entry.method != 8) return std::nullopt;
    // Deflate expands at most 1032-fold: a larger stated size cannot be true, and is not allocated.
    if (entry.uncompressed / 1032 > entry.compressed + 1) {
      fail(where + std::to_string(entry.compressed) + " deflated bytes cannot hold the " +
           std::to_string(entry.uncompressed) + " it states");
    }
    std::vector<std::uint8_t> packed(static_cast<std::size_t>(entry.compressed));
    if (!source_.read(start, packed.size(), packed.data())) fail(where + "unreadable");
    std::vector<std::uint8_t> bytes(static_cast<std::size_t>(entry.uncompressed));
    z_stream stream{};
    if (inflateInit2(&stream, -MAX_WBITS) != Z_OK) fail(where + "cannot start zlib");
    std::size_t in_at = 0, out_at = 0;
    int status = Z_OK;
    // zlib counts in uInt: feed and drain at most 1 GiB a step.
    constexpr std::size_t step = std::size_t{1} << 30;
    while (status == Z_OK) {
      stream.next_in = packed.data() + in_at;
      stream.avail_in = static_cast<uInt>(std::min(step, packed.size() - in_at));
      stream.next_out = bytes.data() + out_at;
      stream.avail_out = static_cast<uInt>(std::min(step, bytes.size() - out_at));
      const uInt in_before = stream.avail_in, out_before = stream.avail_out;
      status = inflate(&stream, Z_NO_FLUSH);
      in_at += in_before - stream.avail_in;
      out_at += out_before - stream.avail_out;
      if (status == Z_OK && in_before == stream.avail_in && out_before == stream.avail_out) break;  // no progress
    }
    inflateEnd(&stream);
    if (status != Z_STREAM_END || out_at != bytes.size()) {
      fail(where + "its deflated data does not inflate to the " + std::to_string(entry.uncompressed) +
           " bytes it states");
    }
    return bytes;
  }

 private:
  const Source& source_;
  std::string file_;
  std::string prefix_;
  std::vector<Entry> entries_;
  std::unordered_map<std::string, std::size_t> index_;
};

// --- pickle

// What the walk knows of a stack value: enough to recognise a storage's persistent id
// ("storage", torch.<Type>Storage, key, location, numel) and the view a tensor takes of it
// (torch._utils._rebuild_tensor_v2(storage, offset, sizes, strides, ...)).
struct Value {
  enum Kind : std::uint8_t { other, mark, text, integer, global, tuple, storage };
  Kind kind = other;
  std::int64_t number = 0;                           // integer; storage: its element count
  std::shared_ptr<const std::string> string;         // text; global: "module\nname"; storage: its key
  std::shared_ptr<const std::vector<Value>> items;  // tuple, when of at most kTupleItems items
};
constexpr std::size_t kTupleItems = 8;

// The element one past the last that a tensor with these sizes and strides views from `offset`: offset
// when it has no element; nullopt for a negative or overflowing value (LibTorch checks none of them).
std::optional<std::uint64_t> view_end(std::int64_t offset, const std::vector<Value>& sizes,
                                      const std::vector<Value>& strides) {
  if (offset < 0) return std::nullopt;
  std::uint64_t last = static_cast<std::uint64_t>(offset);
  constexpr std::uint64_t limit = std::uint64_t{1} << 62;
  for (std::size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d].number < 0 || strides[d].number < 0) return std::nullopt;
    if (sizes[d].number == 0) return static_cast<std::uint64_t>(offset);
  }
  for (std::size_t d = 0; d < sizes.size(); ++d) {
    const auto size = static_cast<std::uint64_t>(sizes[d].number), stride = static_cast<std::uint64_t>(strides[d].number);
    if (size - 1 > limit || stride > limit || (stride > 0 && size - 1 > (limit - last) / stride)) return std::nullopt;
    last += (size - 1) * stride;
  }
  return last + 1;
}

bool all_integers(const Value& tuple) {
  if (tuple.kind != Value::tuple || !tuple.items) return false;
  return std::all_of(tuple.items->begin(), tuple.items->end(), [](const Value& v) { return v.kind == Value::integer; });
}

struct StorageRef {
  std::string key, type;
  std::int64_t numel = 0;
  std::size_t opcode_at = 0;
};

std::size_t storage_element_size(const std::string& type) {
  static const std::map<std::string, std::size_t> sizes = {
      {"FloatStorage", 4}, {"DoubleStorage", 8}, {"HalfStorage", 2}, {"BFloat16Storage", 2},
      {"LongStorage", 8}, {"IntStorage", 4}, {"ShortStorage", 2}, {"CharStorage", 1}, {"ByteStorage", 1},
      {"BoolStorage", 1}, {"ComplexHalfStorage", 4}, {"ComplexFloatStorage", 8}, {"ComplexDoubleStorage", 16},
      {"QInt8Storage", 1}, {"QUInt8Storage", 1}, {"QInt32Storage", 4}, {"QUInt4x2Storage", 1},
      {"QUInt2x4Storage", 1}};
  const auto it = sizes.find(type);
  return it == sizes.end() ? 0 : it->second;
}

// Walks a pickle record's opcodes (protocols 2 to 4, as torch.jit.save writes them) with a stack of what
// matters here, and returns the first problem (a length or memo index that the record's own size cannot
// hold, a pop of an empty stack, a missing mark, a tensor viewing past its storage: LibTorch's unpickler
// trusts all of them); "" when none.
// An opcode it does not know ends the walk, and a record not starting with PROTO is not walked (the
// unpickler reports both). The storages the record references
// go to `storages`.
std::string walk_pickle(const std::uint8_t* data, std::size_t size, std::vector<StorageRef>& storages) {
  std::vector<Value> stack;
  std::vector<std::size_t> marks;  // stack positions of the marks
  std::unordered_map<std::uint64_t, Value> memo;
  std::size_t at = 0;
  auto read_le = [&](std::size_t bytes, std::uint64_t& value) {
    if (size - at < bytes) return false;
    value = le(data + at, bytes);
    at += bytes;
    return true;
  };
  auto skip_line = [&](std::string* line) {
    const std::size_t start = at;
    while (at < size && data[at] != '\n') ++at;
    if (at == size) return false;
    if (line != nullptr) line->assign(reinterpret_cast<const char*>(data + start), at - start);
    ++at;
    return true;
  };
  auto push = [&](Value v) {
    if (v.kind == Value::mark) marks.push_back(stack.size());
    stack.push_back(std::move(v));
  };
  auto pop = [&]() {
    if (stack.back().kind == Value::mark) marks.pop_back();
    Value v = std::move(stack.back());
    stack.pop_back();
    return v;
  };
  // LibTorch's unpickler refuses a record that does not start with PROTO, before reading anything else.
  if (size == 0 || data[0] != 0x80) return "";
  while (at < size) {
    const std::size_t opcode_at = at;
    const std::uint8_t op = data[at++];
    const auto where = [opcode_at] { return " at byte " + std::to_string(opcode_at); };
    std::uint64_t value = 0;
    std::size_t fixed = 0, length_bytes = 0, lines = 0;
    bool memo_index = false;
    // Stack effect: pop `pops` values (after the items down to the mark when `to_mark`), keep `keep` below
    // them, then push `pushes`.
    std::size_t pops = 0, keep = 0;
    bool to_mark = false;
    int pushes = 0;
    switch (op) {
      case '.': return "";  // STOP
      case 0x80: fixed = 1; break;  // PROTO
      case 0x95: fixed = 8; break;  // FRAME
      case '(': {
        Value mark;
        mark.kind = Value::mark;
        push(std::move(mark));
        continue;
      }
      case '0': pops = 1; break;                                   // POP
      case '1': to_mark = true; break;                             // POP_MARK
      case '2': keep = 1; pushes = 1; break;                       // DUP (pushes a copy, below)
      case 'N': case 0x88: case 0x89: case '}': case ']': case ')': case 0x8f: pushes = 1; break;
      case 'Q': pops = 1; pushes = 1; break;                       // BINPERSID (checked below)
      case 'R': case 0x81: pops = 2; pushes = 1; break;            // REDUCE, NEWOBJ
      case 0x92: pops = 3; pushes = 1; break;                      // NEWOBJ_EX
      case 'a': case 'b': pops = 1; keep = 1; break;               // APPEND, BUILD
      case 's': pops = 2; keep = 1; break;                         // SETITEM
      case 'd': case 'l': case 0x91: to_mark = true; pushes = 1; break;  // DICT, LIST, FROZENSET
      case 'e': case 'u': case 0x90: to_mark = true; keep = 1; break;    // APPENDS, SETITEMS, ADDITEMS
      case 'o': to_mark = true; pushes = 1; break;                 // OBJ
      case 't': to_mark = true; pushes = 1; break;                 // TUPLE (built below)
      case 0x85: case 0x86: case 0x87: pops = op - 0x84u; pushes = 1; break;  // TUPLE1..3
      case 0x93: pops = 2; pushes = 1; break;                      // STACK_GLOBAL
      case 0x94: keep = 1; break;                                  // MEMOIZE
      case 'K': fixed = 1; pushes = 1; break;                      // BININT1
      case 'M': fixed = 2; pushes = 1; break;                      // BININT2
      case 'J': fixed = 4; pushes = 1; break;                      // BININT
      case 'h': fixed = 1; pushes = 1; break;                      // BINGET
      case 'j': fixed = 4; pushes = 1; memo_index = true; break;   // LONG_BINGET
      case 'q': fixed = 1; keep = 1; break;                        // BINPUT
      case 'r': fixed = 4; keep = 1; memo_index = true; break;     // LONG_BINPUT
      case 0x82: fixed = 1; pushes = 1; break;                     // EXT1
      case 0x83: fixed = 2; pushes = 1; break;                     // EXT2
      case 0x84: fixed = 4; pushes = 1; break;                     // EXT4
      case 'G': fixed = 8; pushes = 1; break;                      // BINFLOAT
      case 'U': case 'C': case 0x8c: case 0x8a: length_bytes = 1; pushes = 1; break;
      case 'T': case 'X': case 'B': case 0x8b: length_bytes = 4; pushes = 1; break;
      case 0x8d: case 0x8e: length_bytes = 8; pushes = 1; break;
      case 'F': case 'I': case 'L': case 'S': case 'V': case 'g': case 'P': lines = 1; pushes = 1; break;
      case 'p': lines = 1; keep = 1; break;                        // PUT
      case 'c': lines = 2; pushes = 1; break;                      // GLOBAL
      case 'i': lines = 2; to_mark = true; pushes = 1; break;      // INST
      default: return "";
    }
    // Arguments.
    if (fixed > 0 && !read_le(fixed, value)) return "truncated opcode" + where();
    // Memo indices count the objects stored so far, each at least two bytes of the record.
    if (memo_index && value > size) {
      return "memo index " + std::to_string(value) + where() + " in a record of " + std::to_string(size) + " bytes";
    }
    const std::uint8_t* payload = nullptr;
    if (length_bytes > 0) {
      if (!read_le(length_bytes, value)) return "truncated opcode" + where();
      if (value > size - at) {
        return "length " + std::to_string(value) + where() + " beyond the record's " + std::to_string(size) + " bytes";
      }
      payload = data + at;
      at += static_cast<std::size_t>(value);
    }
    std::string line[2];
    for (std::size_t k = 0; k < lines; ++k) {
      if (!skip_line(&line[k])) return "unterminated line" + where();
    }
    // Stack effect.
    std::vector<Value> items;
    if (to_mark) {
      if (marks.empty()) return "no mark for the opcode" + where();
      const std::size_t mark_at = marks.back();
      if (op == 't' && stack.size() - mark_at - 1 <= kTupleItems) {
        items.assign(std::make_move_iterator(stack.begin() + static_cast<std::ptrdiff_t>(mark_at) + 1),
                     std::make_move_iterator(stack.end()));
      }
      stack.resize(mark_at);
      marks.pop_back();
    }
    if (stack.size() < pops + keep) return "pop of an empty stack" + where();
    if (!to_mark && pops > 0) {
      items.resize(pops);
      for (std::size_t k = pops; k-- > 0;) items[k] = pop();
    }
    if (pushes == 0) {
      if (op == 'q' || op == 'r') memo[value] = stack.back();
      if (op == 0x94) memo[memo.size()] = stack.back();
      continue;
    }
    Value out;
    switch (op) {
      case '2': out = stack.back(); break;
      case 'K': case 'M': out.kind = Value::integer; out.number = static_cast<std::int64_t>(value); break;
      case 'J': out.kind = Value::integer; out.number = static_cast<std::int32_t>(static_cast<std::uint32_t>(value)); break;
      case 0x8a:  // LONG1: little-endian two's complement of `value` bytes
        if (value <= 8) {
          std::uint64_t bits = le(payload, static_cast<std::size_t>(value));
          if (value > 0 && value < 8 && (payload[value - 1] & 0x80) != 0) bits |= ~std::uint64_t{0} << (8 * value);
          out.kind = Value::integer;
          out.number = static_cast<std::int64_t>(bits);
        }
        break;
      case 'h': case 'j': {
        const auto it = memo.find(value);
        if (it != memo.end()) out = it->second;
        break;
      }
      case 'U': case 'T': case 0x8c: case 'X': case 0x8d:
        out.kind = Value::text;
        out.string = std::make_shared<const std::string>(reinterpret_cast<const char*>(payload),
                                                         static_cast<std::size_t>(value));
        break;
      case 'c':
        out.kind = Value::global;
        out.string = std::make_shared<const std::string>(line[0] + "\n" + line[1]);
        break;
      case 0x93:
        if (items[0].kind == Value::text && items[1].kind == Value::text) {
          out.kind = Value::global;
          out.string = std::make_shared<const std::string>(*items[0].string + "\n" + *items[1].string);
        }
        break;
      case 't': case 0x85: case 0x86: case 0x87:
        out.kind = Value::tuple;
        if (!items.empty() || op != 't') out.items = std::make_shared<const std::vector<Value>>(std::move(items));
        break;
      case 'Q': {
        const Value& id = items[0];
        if (id.kind != Value::tuple || !id.items || id.items->size() != 5) break;
        const std::vector<Value>& f = *id.items;
        if (f[0].kind != Value::text || *f[0].string != "storage" || f[1].kind != Value::global ||
            f[2].kind != Value::text || f[4].kind != Value::integer) {
          break;
        }
        const std::string& global = *f[1].string;
        if (global.compare(0, 6, "torch\n") != 0) break;
        storages.push_back({*f[2].string, global.substr(6), f[4].number, opcode_at});
        out.kind = Value::storage;
        out.number = f[4].number;
        out.string = f[2].string;
        break;
      }
      case 'R': {  // REDUCE: a tensor's view of its storage must lie inside it
        const Value& call = items[0];
        const Value& args = items[1];
        if (call.kind != Value::global || *call.string != "torch._utils\n_rebuild_tensor_v2" ||
            args.kind != Value::tuple || !args.items || args.items->size() < 4) {
          break;
        }
        const std::vector<Value>& a = *args.items;
        if (a[0].kind != Value::storage || a[1].kind != Value::integer || !all_integers(a[2]) || !all_integers(a[3]) ||
            a[2].items->size() != a[3].items->size() || a[0].number < 0) {
          break;
        }
        const std::optional<std::uint64_t> end = view_end(a[1].number, *a[2].items, *a[3].items);
        if (!end || *end > static_cast<std::uint64_t>(a[0].number)) {
          std::string sizes;
          for (const Value& v : *a[2].items) sizes += (sizes.empty() ? "" : "x") + std::to_string(v.number);
          return "a tensor" + where() + " of sizes [" + sizes + "] at offset " + std::to_string(a[1].number) +
                 (end ? " views elements up to " + std::to_string(*end) : " has a negative or overflowing extent") +
                 " of storage '" + *a[0].string + "', which has " + std::to_string(a[0].number);
        }
        break;
      }
      default: break;
    }
    push(std::move(out));
  }
  return "";
}

void check_archive(const Source& source, const std::string& file) {
  Archive archive(source, file);
  if (!archive.open()) return;
  for (const Entry& entry : archive.entries()) {
    if (!ends_with(entry.name, ".pkl") && !ends_with(entry.name, "_pkl")) continue;
    const std::optional<std::vector<std::uint8_t>> bytes = archive.read(entry);
    if (!bytes) continue;
    std::vector<StorageRef> storages;
    const std::string problem = walk_pickle(bytes->data(), bytes->size(), storages);
    if (!problem.empty()) archive.fail("record " + entry.name + ": " + problem);
    // LibTorch reads the storages of these two records from data/ and constants/.
    if (entry.name != "data.pkl" && entry.name != "constants.pkl") continue;
    const std::string folder = entry.name.substr(0, entry.name.size() - 4) + "/";
    for (const StorageRef& ref : storages) {
      const std::size_t element = storage_element_size(ref.type);
      if (element == 0) continue;  // a type LibTorch's unpickler refuses itself
      const std::string described = " at byte " + std::to_string(ref.opcode_at) + " of " + entry.name;
      if (ref.numel < 0) {
        archive.fail("record " + entry.name + ": a " + ref.type + " of " + std::to_string(ref.numel) +
                     " elements at byte " + std::to_string(ref.opcode_at));
      }
      if (ref.numel == 0) continue;  // LibTorch reads no record
      const Entry* record = archive.find(folder + ref.key);
      if (record == nullptr) {
        archive.fail("record " + folder + ref.key + " is missing; a " + ref.type + " of " + std::to_string(ref.numel) +
                     " elements is described there" + described);
      }
      archive.data_start(*record);
      const std::uint64_t numel = static_cast<std::uint64_t>(ref.numel);
      const bool overflow = numel > std::numeric_limits<std::uint64_t>::max() / element;
      if (overflow || record->uncompressed < numel * element) {
        archive.fail("record " + record->name + " holds " + std::to_string(record->uncompressed) + " bytes; the " +
                     ref.type + described + " needs " + std::to_string(numel) + " x " + std::to_string(element) +
                     (overflow ? "" : " = " + std::to_string(numel * element)) + " bytes");
      }
    }
  }
}

}  // namespace

void check_torchscript_archive(const std::uint8_t* data, std::size_t size, const std::string& name) {
  check_archive(MemorySource(data, size), name);
}

void check_torchscript_archive(const std::string& path) {
  std::ifstream file(path, std::ios::binary | std::ios::ate);
  if (!file) return;
  const std::streamoff size = file.tellg();
  if (size < 0) return;
  check_archive(FileSource(file, static_cast<std::uint64_t>(size)), path);
}

}  // namespace cnnvis
