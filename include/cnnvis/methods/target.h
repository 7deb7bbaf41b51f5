// Which class an explanation is for: "top" (the predicted class), an index, or a class name.
#pragma once

#include <string>

#include "cnnvis/io/model_card.h"

namespace cnnvis {

struct TargetSpec {
  bool top = true;  // the highest-scoring class of each image
  int index = -1;   // fixed class otherwise
  std::string text;
};

// Throws UsageError: "target 1500 is out of range (model has classes 0..999)", "unknown class 'x'".
TargetSpec parse_target(const std::string& text, const ModelCard& card, int num_classes);

}  // namespace cnnvis
