// Progress reporting from library code to whoever drives it (the CLI draws bars; tests ignore it).
#pragma once

#include <cstddef>
#include <functional>
#include <string_view>

namespace cnnvis {

// done/total in units of the caller's choosing (images, steps); what names the stage.
using ProgressCallback = std::function<void(std::size_t done, std::size_t total, std::string_view what)>;

}  // namespace cnnvis
