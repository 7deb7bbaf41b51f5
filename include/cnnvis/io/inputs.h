// Turning command-line input arguments into a list of image paths.
#pragma once

#include <istream>
#include <string>
#include <vector>

namespace cnnvis {

// Expands arguments in order: a file stays as given (even when missing, so that the run reports it as a
// failed input); a directory yields its image files (by extension, sorted; recursively when
// recursive); "-" reads one path per line from in (blank lines skipped). Duplicates are kept once.
// A directory given without recursive that holds only subdirectories yields nothing and a warning.
std::vector<std::string> collect_inputs(const std::vector<std::string>& args, bool recursive, std::istream& in);

// True for file names whose extension is an image format the loader reads (case-insensitive):
// jpg jpeg png bmp tif tiff webp pgm ppm pbm pnm.
bool has_image_extension(const std::string& path);

}  // namespace cnnvis
