// Inputs the fuzz targets (tests/fuzz) found to crash a reader, kept as regression tests. Each must now
// end in the reader's typed error. The byte strings are the fuzzer's crash files, verbatim.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core/version.hpp>

#include "cnnvis/core/errors.h"
#include "cnnvis/io/image_io.h"
#include "cnnvis/io/manifest.h"
#include "cnnvis/io/model_card.h"
#include "cnnvis/io/safetensors.h"

namespace cnnvis {
namespace {

// fuzz_manifest: a number beyond double's range made nlohmann throw out_of_range, not parse_error,
// and the exception escaped the reader.
TEST(FuzzRegression, ManifestWithAHugeNumber) {
  const std::string crash(
      "2111111111100000000000000E800156932\023556=0l\236A\362\300\3761110",
      51);
  EXPECT_THROW(parse_manifest(crash, "m.json"), InputError);
  try {
    parse_manifest("{\"inputs\": [], \"x\": 1e999}", "m.json");
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_STREQ(e.what(), "m.json: not valid JSON (a number is out of range)");
  }
}

// fuzz_model_card: the same escape through the model-card reader.
TEST(FuzzRegression, ModelCardWithAHugeNumber) {
  const std::string crash(
      "444444444000000000001641e282065675765531\314\316444e\042: 1.0, \042mean\042: [d0.2an\042: "
      "[d0.\042r2t0.5, 0.5, 0.25( 0.2>], .1\042tr0.5, 0.0,.2 55( 0.2>], {\012 \042\042transol 0.5"
      ", h",
      150);
  EXPECT_THROW(parse_model_card(crash, "c.json"), ModelCardError);
  try {
    parse_model_card("{\"name\": \"m\", \"architecture\": \"vgg16\", \"input_range\": 1e400}", "c.json");
    FAIL() << "expected ModelCardError";
  } catch (const ModelCardError& e) {
    EXPECT_STREQ(e.what(), "c.json: not valid JSON (a number is out of range)");
  }
}

// The safetensors header parser used the same catch; found by reading the code after the two above.
TEST(FuzzRegression, SafetensorsHeaderWithAHugeNumber) {
  const std::string header = "{\"x\": {\"dtype\": \"F32\", \"shape\": [1e999], \"data_offsets\": [0, 4]}}";
  std::string file(8, '\0');
  file[0] = static_cast<char>(header.size());
  file += header + std::string(4, '\0');
  try {
    parse_safetensors(reinterpret_cast<const std::uint8_t*>(file.data()), file.size(), "w.safetensors");
    FAIL() << "expected WeightsError";
  } catch (const WeightsError& e) {
    EXPECT_STREQ(e.what(), "w.safetensors: header is not valid JSON (a number is out of range)");
  }
}

// fuzz_safetensors: a tensor with no elements (shape [0, 3]) reached memcpy with the null data pointer
// of an empty destination vector (UBSan: null pointer passed as argument 1). Empty tensors are valid.
TEST(FuzzRegression, SafetensorsEmptyTensorConvertsWithoutTouchingItsDestination) {
  const std::string crash(
      "{\000\000\000\000\000\000\000{\"ayy^^mpty\": {\"dtype\": \"F32\", \"shape\": [0, 3], \"data_offs"
      "ets\": [44, 44]}}  \000\000\000\000\000\000\200\077\000\000\000@\000\000@@\000\000^^^^^^^^^^^^^^"
      "^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^`^^^^~^^^^^^^shape*********************dats^^^^^^^^"
      "^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^`^^^^^^^^^^^^shape*********************datsourource\012*"
      "*{***3\000",
      312);
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(crash.data());
  const SafetensorsHeader header = parse_safetensors(bytes, crash.size(), "w.safetensors");
  ASSERT_EQ(header.entries.size(), 1u);
  const TensorEntry& entry = header.entries[0];
  EXPECT_EQ(entry.numel(), 0);
  std::vector<float> floats;  // empty: data() is null
  convert_to_f32(entry, bytes + header.data_offset + entry.begin, floats.data());
}

// fuzz_image: a GIF (which OpenCV 4.6 cannot decode) with "DICM" at byte 128 was handed by cv::imdecode
// to GDCM's DICOM reader, and a failed assertion there aborted the process. Only a decoder for the
// sniffed format may see the bytes. The crash file is written here in hex (328 bytes).
TEST(FuzzRegression, GifWithADicomSignatureNeverReachesTheDicomReader) {
  const std::string hex =
      "474946383961080008000000000000000000000000000000000000000000000000000000000000000000000000000000"
      "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
      "00000000000000000000000000000000000000000000000000000000000000004449434d02000000554c04591c000000"
      "0200100055491400312e322e3834302e31303030382e312e322e3100280002005553020001002800040043530c004d4f"
      "4e4f4348524f4d4532202800100055530200080028001100555302000800280000015553020008002800010155530200"
      "080028000301555302000000e07f10004f57000040000000000102030405060708090a0b0c0d0e0f1011121314151617"
      "18191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f";
  std::vector<std::uint8_t> crash;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    crash.push_back(static_cast<std::uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  ASSERT_EQ(crash.size(), 328u);
  try {
    (void)decode_image(crash, "x.gif", ImageLimits{});
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("x.gif: cannot decode gif data"), std::string::npos) << e.what();
    return;
  }
#if (CV_VERSION_MAJOR * 100 + CV_VERSION_MINOR) < 411
  FAIL() << "expected InputError: this OpenCV has no GIF decoder";
#endif
}

}  // namespace
}  // namespace cnnvis
