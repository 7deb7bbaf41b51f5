// libFuzzer target: the image loading path every command uses: header sniffing, the pixel limit, the
// OpenCV decoders, conversion to 8-bit RGB and resizing to a model input.
// Property: InputError or an RGB image within the limit; nothing else escapes.
#include <cstdint>
#include <vector>

#include <opencv2/core.hpp>

#include "cnnvis/core/errors.h"
#include "cnnvis/io/image_io.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  (void)cnnvis::sniff_jpeg_components(data, size);
  (void)cnnvis::jpeg_has_end_marker(data, size);
  const std::vector<std::uint8_t> bytes(data, data + size);
  cnnvis::ImageLimits limits;
  // Small enough that a crafted header cannot make one run slow, large enough for every seed.
  limits.max_pixels = 1 << 20;
  try {
    const cnnvis::LoadedImage image = cnnvis::decode_image(bytes, "fuzz.img", limits);
    if (image.rgb.type() != CV_8UC3 || image.rgb.empty()) __builtin_trap();
    if (static_cast<std::uint64_t>(image.rgb.total()) > limits.max_pixels) __builtin_trap();
    cnnvis::InputRegion region;
    const cv::Mat input = cnnvis::prepare_model_input(image.rgb, 16, 16, cnnvis::FitMode::letterbox, &region);
    if (input.type() != CV_32FC3 || input.cols != 16 || input.rows != 16) __builtin_trap();
  } catch (const cnnvis::InputError&) {
  }
  return 0;
}
