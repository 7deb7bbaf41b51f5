// Small file helpers shared by the writers of JSON outputs.
#pragma once

#include <string>

namespace cnnvis {

// Writes text to path through path + ".tmp" and rename(), so readers never see a half-written file.
// Throws OutputError "<path>: cannot write (reason)".
void write_text_atomically(const std::string& path, const std::string& text);

}  // namespace cnnvis
