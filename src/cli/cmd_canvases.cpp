#include "commands.h"

namespace cnnvis::cli {
void setup_canvases(CLI::App&) {}
}  // namespace cnnvis::cli
