// Small file helpers shared by the writers of JSON outputs.
#pragma once

#include <cstddef>
#include <string>

namespace cnnvis {

// Writes text to path through path + ".tmp" and rename(), so readers never see a half-written file.
// Throws OutputError "<path>: cannot write (reason)".
void write_text_atomically(const std::string& path, const std::string& text);
// The same for binary data (encoded images): a full disk or a file-size limit is reported, never left
// behind as a truncated file.
void write_bytes_atomically(const std::string& path, const void* data, std::size_t size);

}  // namespace cnnvis
