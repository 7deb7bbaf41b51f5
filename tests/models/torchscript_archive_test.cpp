// The checks of a TorchScript zip made before LibTorch reads it (torchscript_archive.h), on an archive
// torch::jit saves here, altered in place: tensor records cut short or gone, a tensor viewing past its
// storage, a pickle that pops an empty stack, a central directory beyond the file; and load_torchscript
// refusing the cut record before jit::load.
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <torch/script.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/models/network.h"
#include "cnnvis/models/torchscript.h"
#include "cnnvis/models/torchscript_archive.h"
#include "support/temp_dir.h"

namespace cnnvis {
namespace {

using Bytes = std::vector<std::uint8_t>;

// A module with a float parameter [3, 4] and an int64 buffer [5]; forward gives [N, 4] logits.
Bytes saved_module() {
  torch::jit::Module module("m");
  module.register_parameter("weight", at::arange(12, at::kFloat).reshape({3, 4}), false);
  module.register_buffer("steps", at::ones({5}, at::kLong));
  module.define("def forward(self, x):\n    return x.mean([2, 3]) @ self.weight\n");
  std::ostringstream out;
  module.save(out);
  const std::string text = out.str();
  return Bytes(text.begin(), text.end());
}

std::uint32_t u32(const Bytes& b, std::size_t at) {
  return b[at] | b[at + 1] << 8 | b[at + 2] << 16 | static_cast<std::uint32_t>(b[at + 3]) << 24;
}
void put_u32(Bytes& b, std::size_t at, std::uint32_t v) {
  for (int k = 0; k < 4; ++k) b[at + k] = static_cast<std::uint8_t>(v >> (8 * k));
}

// The central-directory and local-header offsets of the record whose zip name ends with "/" + name.
struct Located {
  std::size_t central = 0, local = 0, data = 0;
  std::uint32_t size = 0;
};
Located locate(const Bytes& b, const std::string& name) {
  for (std::size_t at = 0; at + 46 <= b.size(); ++at) {
    if (u32(b, at) != 0x02014b50) continue;
    const std::size_t name_size = b[at + 28] | b[at + 29] << 8;
    const std::string full(b.begin() + at + 46, b.begin() + at + 46 + name_size);
    if (full.size() <= name.size() || full.compare(full.size() - name.size(), name.size(), name) != 0 ||
        full[full.size() - name.size() - 1] != '/') {
      continue;
    }
    Located r;
    r.central = at;
    r.size = u32(b, at + 24);
    r.local = u32(b, at + 42);
    r.data = r.local + 30 + (b[r.local + 26] | b[r.local + 27] << 8) + (b[r.local + 28] | b[r.local + 29] << 8);
    return r;
  }
  ADD_FAILURE() << "no record " << name;
  return {};
}

// Makes the record `size` bytes long in both headers (its data stays where it was).
void set_size(Bytes& b, const Located& r, std::uint32_t size) {
  for (std::size_t at : {r.central + 20, r.central + 24, r.local + 18, r.local + 22}) put_u32(b, at, size);
}

std::string refusal(const Bytes& b) {
  try {
    check_torchscript_archive(b.data(), b.size(), "m.pt");
  } catch (const WeightsError& e) {
    return e.what();
  }
  return "";
}

TEST(TorchScriptArchive, SavedModuleIsAccepted) {
  const Bytes b = saved_module();
  EXPECT_EQ(refusal(b), "");
  EXPECT_EQ(locate(b, "data/0").size + locate(b, "data/1").size, 3u * 4 * 4 + 5 * 8);
}

TEST(TorchScriptArchive, EveryTensorRecordOneByteShortIsRefused) {
  const Bytes good = saved_module();
  for (const std::string record : {"data/0", "data/1"}) {
    Bytes b = good;
    const Located r = locate(b, record);
    set_size(b, r, r.size - 1);
    const std::string message = refusal(b);
    EXPECT_NE(message.find("m.pt: not a TorchScript model (record " + record + " holds " + std::to_string(r.size - 1) +
                           " bytes; the "),
              std::string::npos)
        << message;
    EXPECT_NE(message.find(" = " + std::to_string(r.size) + " bytes)"), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    // A longer record is no problem: LibTorch reads what the storage needs.
    set_size(b, r, r.size + 1);
    EXPECT_EQ(refusal(b), "");
  }
}

TEST(TorchScriptArchive, MissingTensorRecordIsRefused) {
  Bytes b = saved_module();
  const Located r = locate(b, "data/1");
  const std::size_t name_size = b[r.central + 28];
  b[r.central + 46 + name_size - 1] = '7';  // now data/7
  EXPECT_NE(refusal(b).find("(record data/1 is missing; a "), std::string::npos) << refusal(b);
}

TEST(TorchScriptArchive, RecordBeyondTheFileIsRefused) {
  Bytes b = saved_module();
  const Located r = locate(b, "data/0");
  set_size(b, r, static_cast<std::uint32_t>(b.size()));
  EXPECT_NE(refusal(b).find("(record data/0: its " + std::to_string(b.size()) + " bytes at byte "), std::string::npos)
      << refusal(b);
}

TEST(TorchScriptArchive, PickleThatPopsAnEmptyStackIsRefused) {
  Bytes b = saved_module();
  const Located r = locate(b, "data.pkl");
  ASSERT_EQ(b[r.data], 0x80);  // PROTO 2, then the first opcode
  b[r.data + 2] = '0';         // POP
  EXPECT_NE(refusal(b).find("(record data.pkl: pop of an empty stack at byte 2)"), std::string::npos) << refusal(b);
}

TEST(TorchScriptArchive, TensorViewPastItsStorageIsRefused) {
  const Bytes good = saved_module();
  const Located r = locate(good, "data.pkl");
  // Each tensor's storage offset: BININT1 0 right after its persistent id (BINPERSID) and memo store (BINPUT).
  std::vector<std::size_t> offsets;
  for (std::size_t at = r.data; at + 5 <= r.data + r.size; ++at) {
    if (good[at] == 'Q' && good[at + 1] == 'q' && good[at + 3] == 'K' && good[at + 4] == 0) offsets.push_back(at + 4);
  }
  ASSERT_EQ(offsets.size(), 2u) << "the weight and the buffer";
  for (std::size_t at : offsets) {
    Bytes b = good;
    b[at] = 1;  // the view now ends one element past its storage
    const std::string message = refusal(b);
    EXPECT_NE(message.find("(record data.pkl: a tensor at byte "), std::string::npos) << message;
    EXPECT_NE(message.find(" at offset 1 views elements up to "), std::string::npos) << message;
  }
  // The weight as the [2, 4] view of its first 8 elements at offset 4: inside its 12, accepted.
  Bytes b = good;
  b[offsets[0]] = 4;
  const std::size_t sizes = offsets[0] + 1;  // MARK, BININT1 3, BININT1 4, TUPLE
  ASSERT_EQ(std::string(b.begin() + sizes, b.begin() + sizes + 6), std::string("(K\x03K\x04t", 6));
  b[sizes + 2] = 2;
  EXPECT_EQ(refusal(b), "");
}

TEST(TorchScriptArchive, CentralDirectoryBeyondTheFileIsRefused) {
  const Bytes b = saved_module();
  // The file up to its central directory, then the end record alone: it points at a directory that is gone.
  std::size_t end = b.size() - 22;
  while (u32(b, end) != 0x06054b50) --end;
  Bytes cut(b.begin(), b.begin() + u32(b, end + 16));
  cut.insert(cut.end(), b.begin() + static_cast<std::ptrdiff_t>(end), b.end());
  EXPECT_NE(refusal(cut).find("m.pt: not a TorchScript model (zip central directory of "), std::string::npos)
      << refusal(cut);
}

TEST(TorchScriptArchive, NotAZipIsLeftToLibTorch) {
  EXPECT_EQ(refusal(Bytes{}), "");
  EXPECT_EQ(refusal(Bytes(100, 'x')), "");
}

TEST(TorchScriptArchive, LoaderRefusesCutRecordBeforeJitLoad) {
  testing::TempDir dir;
  Bytes b = saved_module();
  {
    std::ofstream(dir / "good.pt", std::ios::binary).write(reinterpret_cast<const char*>(b.data()), b.size());
  }
  EXPECT_EQ(load_torchscript(dir / "good.pt", 8, 8).num_classes, 4);
  const Located r = locate(b, "data/0");
  set_size(b, r, r.size / 2);
  {
    std::ofstream(dir / "cut.pt", std::ios::binary).write(reinterpret_cast<const char*>(b.data()), b.size());
  }
  try {
    load_torchscript(dir / "cut.pt", 8, 8);
    ADD_FAILURE() << "a record cut short was loaded";
  } catch (const WeightsError& e) {
    EXPECT_NE(std::string(e.what()).find("cut.pt: not a TorchScript model (record data/0 holds "), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace cnnvis
