#include "commands.h"

namespace cnnvis::cli {
void setup_demo(CLI::App&) {}
}  // namespace cnnvis::cli
