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

// An input path with a key that names it independently of where the data is mounted and of the order
// of the arguments: for a file inside a directory argument, the directory's own name joined with the
// path below it ("/mnt/a/photos" + "x/1.jpg" -> "photos/x/1.jpg"; "." contributes no name); for a
// file argument or a stdin line, the path lexically normalised. Keys are unique within one call (a
// clash falls back to the normalised path). Used to pair runs, split shards and name outputs.
struct InputFile {
  std::string path;
  std::string key;
};
std::vector<InputFile> collect_input_files(const std::vector<std::string>& args, bool recursive, std::istream& in);

// True for file names whose extension is an image format the loader reads (case-insensitive):
// jpg jpeg png bmp tif tiff webp pgm ppm pbm pnm.
bool has_image_extension(const std::string& path);

}  // namespace cnnvis
