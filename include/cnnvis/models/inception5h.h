// The Lucid InceptionV1 ("inception5h"), see src/models/inception5h.cpp.
#pragma once

#include <memory>

#include "cnnvis/models/network.h"

namespace cnnvis {

std::unique_ptr<Network> build_inception5h(int num_classes = 1008);

}  // namespace cnnvis
