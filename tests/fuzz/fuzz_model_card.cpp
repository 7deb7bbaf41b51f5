// libFuzzer target: model-card JSON parsing and validation, and the card's helpers on what it accepts.
// Property: ModelCardError or a valid card; a card that was read can be written back and read again.
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "cnnvis/core/errors.h"
#include "cnnvis/io/model_card.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const cnnvis::ModelCard card = cnnvis::parse_model_card(text, "fuzz.json");
    (void)card.label(0);
    (void)card.label(-1);
    (void)card.find_label("cat");
    (void)card.weights_path();
    const nlohmann::json again = cnnvis::model_card_to_json(card);
    const cnnvis::ModelCard round_trip = cnnvis::model_card_from_json(again, "fuzz.json (round trip)");
    if (round_trip.name != card.name || round_trip.labels != card.labels) __builtin_trap();
  } catch (const cnnvis::ModelCardError&) {
  }
  return 0;
}
