// libFuzzer target: an atlas collection's atlas_samples.csv (shards come from other machines and jobs):
// InputError, or samples whose text fields survive a write-and-parse round trip.
#include <cstdint>
#include <string>

#include "cnnvis/core/errors.h"
#include "cnnvis/core/text.h"
#include "cnnvis/io/atlas_store.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const auto samples = cnnvis::parse_atlas_samples_csv(text, "fuzz/atlas_samples.csv");
    std::string again = "index,key,path,sample,x,y,predicted\n";
    for (std::size_t i = 0; i < samples.size(); ++i) {
      const auto& s = samples[i];
      again += std::to_string(i) + ',' + cnnvis::csv_field(s.key) + ',' + cnnvis::csv_field(s.path) + ',' +
               std::to_string(s.sample) + ',' + std::to_string(s.x) + ',' + std::to_string(s.y) + ',' +
               std::to_string(s.predicted) + '\n';
    }
    const auto reparsed = cnnvis::parse_atlas_samples_csv(again, "fuzz/again.csv");
    if (reparsed.size() != samples.size()) __builtin_trap();
    for (std::size_t i = 0; i < samples.size(); ++i) {
      if (reparsed[i].key != samples[i].key || reparsed[i].path != samples[i].path ||
          reparsed[i].sample != samples[i].sample || reparsed[i].predicted != samples[i].predicted) {
        __builtin_trap();
      }
    }
  } catch (const cnnvis::InputError&) {
  }
  return 0;
}
