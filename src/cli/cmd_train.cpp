#include "commands.h"

namespace cnnvis::cli {
void setup_train(CLI::App&) {}
}  // namespace cnnvis::cli
