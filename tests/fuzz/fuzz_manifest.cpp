// libFuzzer target: reading a manifest.json (InputError or a JSON object with an 'inputs' list).
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "cnnvis/core/errors.h"
#include "cnnvis/io/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const nlohmann::json manifest = cnnvis::parse_manifest(text, "fuzz/manifest.json");
    if (!manifest.is_object() || !manifest.at("inputs").is_array()) __builtin_trap();
  } catch (const cnnvis::InputError&) {
  }
  return 0;
}
