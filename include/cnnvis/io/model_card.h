// Model cards: the JSON that says how to feed a model and what its outputs mean.
//
// Schema (models/<name>.json):
// {
//   "name": "vgg16",                  // model name used on the command line
//   "architecture": "vgg16",          // which native network to build: vgg16 | googlenet | fashion_vgg
//   "input_size": [224, 224],         // [height, width]
//   "channel_order": "RGB",
//   "input_range": 1.0,               // pixel values are scaled to [0, input_range] before mean/std
//   "mean": [0.485, 0.456, 0.406],    // in units of input_range
//   "std": [0.229, 0.224, 0.225],
//   "transform_input": false,         // GoogLeNet: torchvision's re-normalisation inside forward
//   "labels": ["tench", ...],         // one per output class; may be empty (then "class N")
//   "default_layer": "features.29",   // Grad-CAM default
//   "weights_file": "vgg16.safetensors",  // relative to the card's directory
//   "weights_sha256": "..." or null,  // written by the exporter; checked when present
//   "ignore_weight_prefixes": ["aux1.", "aux2."],  // checkpoint keys the native model does not use
//   "source": "torchvision 0.14 pretrained IMAGENET1K_V1"  // free text
// }
#pragma once

#include <array>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace cnnvis {

struct ModelCard {
  std::string name;
  std::string architecture;
  int input_height = 224;
  int input_width = 224;
  std::string channel_order = "RGB";
  float input_range = 1.0f;
  std::array<float, 3> mean{0.485f, 0.456f, 0.406f};
  std::array<float, 3> std{0.229f, 0.224f, 0.225f};
  bool transform_input = false;
  std::vector<std::string> labels;
  std::string default_layer;
  std::string weights_file;
  std::string weights_sha256;  // empty when unknown
  std::vector<std::string> ignore_weight_prefixes;
  std::string source;
  std::string card_path;  // where it was read from; not serialised

  // Label of class index, or "class N" when labels are absent.
  std::string label(int index) const;
  // Class index for a name (case-insensitive exact match) or -1.
  int find_label(const std::string& name) const;
  // weights_file resolved against the card's directory.
  std::string weights_path() const;
};

// Throws ModelCardError naming the file and the field.
ModelCard read_model_card(const std::string& path);
// The same from the card's text; `name` is used in messages (the fuzz target calls this).
ModelCard parse_model_card(const std::string& text, const std::string& name);
ModelCard model_card_from_json(const nlohmann::json& json, const std::string& source_name);
nlohmann::json model_card_to_json(const ModelCard& card);
void write_model_card(const ModelCard& card, const std::string& path);  // throws OutputError

}  // namespace cnnvis
