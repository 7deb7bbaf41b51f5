// The one image I/O layer every command uses: reading user images safely, preparing model inputs, and
// writing PNGs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

namespace cnnvis {

struct ImageLimits {
  std::uint64_t max_pixels = 178'956'970;  // same default as Pillow's decompression-bomb error
  std::uint64_t max_file_bytes = 1ull << 30;
};

// Format and size read from the first bytes of a file, without decoding pixels.
struct ImageHeader {
  std::string format;  // "png" | "jpeg" | "bmp" | "gif" | "webp" | "tiff" | "pnm"
  std::int64_t width = 0;
  std::int64_t height = 0;
};

// Recognises PNG, JPEG, BMP, GIF, WebP (VP8/VP8L/VP8X), TIFF (both byte orders) and PNM. Returns
// nullopt when the bytes are not a known image format. Dimensions may be 0 when the header is cut
// short before them (the decoder will then fail with a clear error).
std::optional<ImageHeader> sniff_image_header(const std::uint8_t* data, std::size_t size);
// Number of colour components in a JPEG's frame header (1 gray, 3 colour, 4 CMYK); 0 when the bytes
// are not a JPEG or the frame header is missing or cut short. Lets load_image report a gray JPEG as
// one channel although it is decoded straight to colour (which applies EXIF orientation).
int sniff_jpeg_components(const std::uint8_t* data, std::size_t size);
// True when a JPEG has an end-of-image marker after its first scan header. libjpeg only warns about
// data that ends early and fills the rest with grey, so load_image uses this to refuse truncated files.
bool jpeg_has_end_marker(const std::uint8_t* data, std::size_t size);

struct LoadedImage {
  std::string path;
  cv::Mat rgb;  // CV_8UC3, RGB order, EXIF orientation applied, alpha composited over white
  std::string format;
  int source_channels = 3;   // 1 (gray), 2 (gray+alpha), 3, 4
  int source_bit_depth = 8;  // 8 or 16 (or 32 for float TIFF)
};

// Reads and decodes an image file. Throws InputError whose message is "<path>: <problem>" for a
// missing or unreadable file, an empty file, a file that is not an image, an image over the pixel
// limit (checked from the header before decoding), and a decoder failure (truncated/corrupt data).
// 16-bit images are scaled to 8 bits, grayscale is replicated to RGB.
LoadedImage load_image(const std::string& path, const ImageLimits& limits = {});
LoadedImage decode_image(const std::vector<std::uint8_t>& bytes, const std::string& name,
                         const ImageLimits& limits = {});
// The pixels as the file stores them (BGR(A) order, 8/16-bit or float, no EXIF rotation), after the
// same checks and with the same errors as load_image: for comparing written images exactly.
cv::Mat load_image_unchanged(const std::string& path, const ImageLimits& limits = {});

// How an image of another shape becomes the model's input.
enum class FitMode { stretch, center_crop, letterbox };
FitMode parse_fit_mode(const std::string& text);  // throws UsageError listing the choices

// The region of the source image that the model input shows, in source pixel coordinates, so that
// maps computed on the input can be drawn back onto the original.
struct InputRegion {
  cv::Rect2d source_rect;  // part of the source covered (center_crop: the crop; else the whole image)
  cv::Rect2d input_rect;   // where it lands in the model input (letterbox: the non-padded part)
};

// RGB CV_8UC3 -> RGB CV_32FC3 in [0, 1] of exactly width x height (bilinear, area when shrinking).
cv::Mat prepare_model_input(const cv::Mat& rgb8, int width, int height, FitMode fit, InputRegion* region = nullptr);

// Maps a CV_32F map defined on the model input back to the source image's size (inverting fit).
cv::Mat map_to_source(const cv::Mat& input_map, const InputRegion& region, cv::Size source_size);

// Writes an 8-bit RGB (CV_8UC3) or gray (CV_8UC1) image as PNG; RGB is converted to the file's BGR.
// Creates no directories. Throws OutputError naming the path.
void write_png(const std::string& path, const cv::Mat& image);
// Writes a CV_32F map with values in [0, 1] as a 16-bit grayscale PNG (clipped).
void write_png16(const std::string& path, const cv::Mat& map01);

}  // namespace cnnvis
