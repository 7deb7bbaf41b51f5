// Image reading, model-input preparation and PNG writing. Reading is defensive: the format and size
// come from our own header parser (image_sniff.cpp) so that oversized images are refused before a
// decoder allocates anything, and every OpenCV failure becomes an InputError naming the file.
#include "cnnvis/io/image_io.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <new>
#include <system_error>

#include <fmt/format.h>
#include <opencv2/core.hpp>
#include <opencv2/core/version.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "cnnvis/core/errors.h"
#include "cnnvis/io/files.h"

namespace cnnvis {
namespace {

namespace fs = std::filesystem;

std::string cannot_decode(const std::string& name, const std::string& format) {
#if (CV_VERSION_MAJOR * 100 + CV_VERSION_MINOR) < 411
  // OpenCV gained a GIF decoder only in 4.11; say so rather than blame the file.
  if (format == "gif") {
    return fmt::format("{}: cannot decode gif data (this OpenCV build has no GIF decoder; convert it to PNG)", name);
  }
#endif
  return fmt::format("{}: cannot decode {} data (corrupt or truncated)", name, format);
}

// Converts any decoded Mat (1-4 channels, 8/16-bit or float, BGR(A) order) to 8-bit RGB, compositing
// alpha over white. Works in float [0, 1] for everything except plain 8-bit colour, which needs
// no arithmetic beyond a channel swap.
cv::Mat to_rgb8(const cv::Mat& decoded, const std::string& name) {
  const int channels = decoded.channels();
  const int depth = decoded.depth();
  cv::Mat rgb;
  if (depth == CV_8U && (channels == 1 || channels == 3)) {
    cv::cvtColor(decoded, rgb, channels == 1 ? cv::COLOR_GRAY2RGB : cv::COLOR_BGR2RGB);
    return rgb;
  }

  cv::Mat unit;  // float in [0, 1]
  switch (depth) {
    case CV_8U:
      decoded.convertTo(unit, CV_32F, 1.0 / 255.0);
      break;
    case CV_16U:
      // 16 -> 8 bits is v / 257 (65535 -> 255); dividing by 65535 here and multiplying by 255 at the
      // end is the same scale.
      decoded.convertTo(unit, CV_32F, 1.0 / 65535.0);
      break;
    case CV_32F:
    case CV_64F:
      // Float images (TIFF) are taken to be in [0, 1]; NaN becomes 0 and the rest is clipped.
      decoded.convertTo(unit, CV_32F);
      cv::patchNaNs(unit, 0.0);
      cv::min(cv::max(unit, 0.0), 1.0, unit);
      break;
    default:
      throw InputError(fmt::format("{}: unsupported pixel format (depth {})", name, depth));
  }

  if (channels == 2 || channels == 4) {
    std::vector<cv::Mat> planes;
    cv::split(unit, planes);
    const cv::Mat alpha = planes.back();
    cv::Mat one_minus_alpha = 1.0 - alpha;
    for (int c = 0; c + 1 < channels; ++c) {
      // out = colour * alpha + white * (1 - alpha)
      planes[c] = planes[c].mul(alpha) + one_minus_alpha;
    }
    planes.pop_back();
    cv::merge(planes, unit);
  } else if (channels != 1 && channels != 3) {
    throw InputError(fmt::format("{}: unsupported number of channels ({})", name, channels));
  }

  cv::Mat unit_rgb;
  cv::cvtColor(unit, unit_rgb, unit.channels() == 1 ? cv::COLOR_GRAY2RGB : cv::COLOR_BGR2RGB);
  unit_rgb.convertTo(rgb, CV_8U, 255.0);  // rounds to nearest, saturating
  return rgb;
}

int bit_depth_of(int depth) {
  switch (depth) {
    case CV_8U:
    case CV_8S:
      return 8;
    case CV_16U:
    case CV_16S:
      return 16;
    case CV_64F:
      return 64;
    default:
      return 32;
  }
}

bool is_shrinking(cv::Size from, cv::Size to) { return to.width <= from.width && to.height <= from.height; }

cv::Mat resize_to(const cv::Mat& image, cv::Size size) {
  if (image.size() == size) return image.clone();
  cv::Mat out;
  // Area averaging avoids aliasing when shrinking; bilinear is the smooth choice when enlarging.
  cv::resize(image, out, size, 0, 0, is_shrinking(image.size(), size) ? cv::INTER_AREA : cv::INTER_LINEAR);
  return out;
}

// Encodes in memory and writes through files.h, because cv::imwrite does not report every failed write
// (a full disk can leave a truncated PNG behind and still return true).
void encode_and_write(const std::string& path, const cv::Mat& image) {
  // The file name picks the format: PNG for everything cnnvis writes, except the small JPEG copies of
  // the inputs that index.html shows (photos stay small as JPEG).
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const bool jpeg = ext == ".jpg" || ext == ".jpeg";
  std::vector<std::uint8_t> png;
  bool ok = false;
  try {
    ok = jpeg ? cv::imencode(".jpg", image, png, {cv::IMWRITE_JPEG_QUALITY, 90}) : cv::imencode(".png", image, png);
  } catch (const cv::Exception&) {
    ok = false;
  }
  if (!ok) throw OutputError(fmt::format("{}: cannot encode PNG", path));
  const fs::path parent = fs::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty() && !fs::is_directory(parent, ec)) {
    throw OutputError(fmt::format("{}: cannot write PNG (no such directory)", path));
  }
  write_bytes_atomically(path, png.data(), png.size());
}

}  // namespace

namespace {

// The checks every decode goes through: size limits, a recognised header, the pixel limit from the
// header, and only formats whose own OpenCV decoder will get the bytes.
ImageHeader check_before_decoding(const std::vector<std::uint8_t>& bytes, const std::string& name,
                                  const ImageLimits& limits) {
  if (bytes.empty()) throw InputError(fmt::format("{}: empty file", name));
  if (bytes.size() > limits.max_file_bytes) {
    throw InputError(fmt::format("{}: file is {} bytes, over the limit of {}", name, bytes.size(), limits.max_file_bytes));
  }
  const auto header = sniff_image_header(bytes.data(), bytes.size());
  if (!header) throw InputError(fmt::format("{}: not an image (unrecognised format)", name));

  // Refuse decompression bombs from the header alone, before the decoder allocates the pixels.
  const auto w = static_cast<std::uint64_t>(header->width);
  const auto h = static_cast<std::uint64_t>(header->height);
  const bool overflow = w != 0 && h > std::numeric_limits<std::uint64_t>::max() / w;
  const std::uint64_t pixels = overflow ? std::numeric_limits<std::uint64_t>::max() : w * h;
  if (overflow || pixels > limits.max_pixels) {
    throw InputError(fmt::format("{}: image is {}x{} = {} pixels, over the limit of {} (raise it with --max-pixels)",
                                 name, w, h, pixels, limits.max_pixels));
  }
  // Without a size from the header the limit cannot be enforced, and any real decoder would fail on
  // a header that is cut short or zero-sized anyway.
  if (w == 0 || h == 0) throw InputError(cannot_decode(name, header->format));
  // libjpeg treats missing data as a warning and pads the image with grey; refuse it like Pillow does.
  if (header->format == "jpeg" && !jpeg_has_end_marker(bytes.data(), bytes.size())) {
    throw InputError(cannot_decode(name, header->format));
  }

#if (CV_VERSION_MAJOR * 100 + CV_VERSION_MINOR) < 411
  // Without a GIF decoder, cv::imdecode offers the bytes to every other decoder, and some match at an
  // offset: a GIF with "DICM" at byte 128 went to GDCM's DICOM reader, whose assertions abort the
  // process on malformed data (found by fuzz_image). Only a decoder for the sniffed format may see them.
  if (header->format == "gif") throw InputError(cannot_decode(name, header->format));
#endif

  return *header;
}

void check_decoded(const cv::Mat& decoded, const std::string& name, const ImageHeader& header,
                   const ImageLimits& limits) {
  if (decoded.empty() || decoded.dims != 2) throw InputError(cannot_decode(name, header.format));
  // The decoder may disagree with the header (a crafted file); check what it actually produced.
  if (static_cast<std::uint64_t>(decoded.total()) > limits.max_pixels) {
    throw InputError(fmt::format("{}: image is {}x{} = {} pixels, over the limit of {} (raise it with --max-pixels)",
                                 name, decoded.cols, decoded.rows, decoded.total(), limits.max_pixels));
  }
}

}  // namespace

LoadedImage decode_image(const std::vector<std::uint8_t>& bytes, const std::string& name, const ImageLimits& limits) {
  const ImageHeader checked = check_before_decoding(bytes, name, limits);
  const auto header = &checked;
  LoadedImage image;
  image.path = name;
  image.format = header->format;
  try {
    const bool jpeg = header->format == "jpeg";
    // JPEG: IMREAD_COLOR, because OpenCV applies the EXIF orientation only then (not with
    // IMREAD_UNCHANGED). Other formats: IMREAD_UNCHANGED keeps alpha and 16-bit samples; their rare
    // EXIF orientation tags (PNG eXIf, WebP, TIFF) are ignored, as most viewers do.
    const cv::Mat decoded = cv::imdecode(bytes, jpeg ? cv::IMREAD_COLOR : cv::IMREAD_UNCHANGED);
    check_decoded(decoded, name, *header, limits);
    if (jpeg) {
      const int components = sniff_jpeg_components(bytes.data(), bytes.size());
      image.source_channels = components == 1 ? 1 : 3;
      image.source_bit_depth = 8;
    } else {
      image.source_channels = decoded.channels();
      image.source_bit_depth = bit_depth_of(decoded.depth());
      // OpenCV expands gray + alpha PNGs to four channels; the IHDR colour type (byte 25) says what
      // the file held.
      if (header->format == "png" && bytes.size() > 25) {
        if (bytes[25] == 0) image.source_channels = 1;
        if (bytes[25] == 4) image.source_channels = 2;
      }
    }
    image.rgb = to_rgb8(decoded, name);
  } catch (const cv::Exception&) {
    throw InputError(cannot_decode(name, header->format));
  } catch (const std::bad_alloc&) {
    throw InputError(fmt::format("{}: out of memory while decoding", name));
  }
  return image;
}

namespace {

std::vector<std::uint8_t> read_image_file(const std::string& path, const ImageLimits& limits) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (ec || !fs::exists(status)) {
    if (ec && ec != std::errc::no_such_file_or_directory) {
      throw InputError(fmt::format("{}: cannot access ({})", path, ec.message()));
    }
    throw InputError(fmt::format("{}: no such file", path));
  }
  if (fs::is_directory(status)) throw InputError(fmt::format("{}: is a directory", path));
  // Devices (/dev/zero, /dev/urandom) would be read up to the size limit for nothing. Pipes stay
  // allowed: process substitution (<(curl ...)) hands over a pipe.
  if (fs::is_character_file(status) || fs::is_block_file(status) || fs::is_socket(status)) {
    throw InputError(fmt::format("{}: not a regular file (a device or socket)", path));
  }

  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(fmt::format("{}: cannot open ({})", path, std::strerror(errno)));
  // Read at most one byte past the limit: enough to tell "too big" without reading a huge file, and
  // correct for special files whose size is not known up front.
  std::vector<std::uint8_t> bytes;
  const std::uint64_t cap = limits.max_file_bytes;
  std::uintmax_t expected = 0;
  if (fs::is_regular_file(status)) {
    expected = fs::file_size(path, ec);
    if (!ec && expected > cap) {
      throw InputError(fmt::format("{}: file is {} bytes, over the limit of {}", path, expected, cap));
    }
  }
  bytes.reserve(static_cast<std::size_t>(std::min<std::uintmax_t>(expected, cap)));
  char chunk[1 << 16];
  while (in) {
    in.read(chunk, sizeof chunk);
    const std::streamsize got = in.gcount();
    if (got <= 0) break;
    bytes.insert(bytes.end(), reinterpret_cast<std::uint8_t*>(chunk), reinterpret_cast<std::uint8_t*>(chunk) + got);
    if (bytes.size() > cap) {
      throw InputError(fmt::format("{}: file is over the limit of {} bytes", path, cap));
    }
  }
  if (in.bad()) throw InputError(fmt::format("{}: read error", path));
  if (bytes.empty()) throw InputError(fmt::format("{}: empty file", path));
  return bytes;
}

}  // namespace

LoadedImage load_image(const std::string& path, const ImageLimits& limits) {
  return decode_image(read_image_file(path, limits), path, limits);
}

cv::Mat load_image_unchanged(const std::string& path, const ImageLimits& limits) {
  const std::vector<std::uint8_t> bytes = read_image_file(path, limits);
  const ImageHeader header = check_before_decoding(bytes, path, limits);
  try {
    cv::Mat decoded = cv::imdecode(bytes, cv::IMREAD_UNCHANGED);
    check_decoded(decoded, path, header, limits);
    return decoded;
  } catch (const cv::Exception&) {
    throw InputError(cannot_decode(path, header.format));
  } catch (const std::bad_alloc&) {
    throw InputError(fmt::format("{}: out of memory while decoding", path));
  }
}

FitMode parse_fit_mode(const std::string& text) {
  if (text == "stretch") return FitMode::stretch;
  if (text == "center-crop" || text == "center_crop") return FitMode::center_crop;
  if (text == "letterbox") return FitMode::letterbox;
  throw UsageError(fmt::format("unknown fit mode '{}' (choices: stretch, center-crop, letterbox)", text));
}

cv::Mat prepare_model_input(const cv::Mat& rgb8, int width, int height, FitMode fit, InputRegion* region) {
  if (width <= 0 || height <= 0) {
    throw UsageError(fmt::format("model input size must be positive, got {}x{}", width, height));
  }
  if (rgb8.empty() || rgb8.depth() != CV_8U || (rgb8.channels() != 3 && rgb8.channels() != 1)) {
    throw UsageError("prepare_model_input needs a non-empty 8-bit RGB image");
  }
  cv::Mat source = rgb8;
  if (source.channels() == 1) cv::cvtColor(rgb8, source, cv::COLOR_GRAY2RGB);

  const cv::Size target(width, height);
  const double sw = source.cols, sh = source.rows;
  InputRegion placed;
  cv::Mat input8;

  switch (fit) {
    case FitMode::stretch: {
      input8 = resize_to(source, target);
      placed.source_rect = cv::Rect2d(0, 0, sw, sh);
      placed.input_rect = cv::Rect2d(0, 0, width, height);
      break;
    }
    case FitMode::center_crop: {
      // Scale so that the image covers the target (the shorter side, relative to the target's aspect,
      // matches), then cut the centre: torchvision's Resize + CenterCrop for a square target.
      // The other side is truncated, as torchvision's Resize computes int(size * long / short).
      int rw = width, rh = height;
      if (width / sw >= height / sh) {
        rh = std::max(height, static_cast<int>(std::floor(width * sh / sw)));
      } else {
        rw = std::max(width, static_cast<int>(std::floor(height * sw / sh)));
      }
      const cv::Mat resized = resize_to(source, cv::Size(rw, rh));
      // Same rounding of the offset as torchvision's center_crop: round((size - crop) / 2), ties to even.
      const int x0 = static_cast<int>(std::nearbyint((rw - width) / 2.0));
      const int y0 = static_cast<int>(std::nearbyint((rh - height) / 2.0));
      input8 = resized(cv::Rect(x0, y0, width, height)).clone();
      const double fx = sw / rw, fy = sh / rh;  // resized -> source pixels
      placed.source_rect = cv::Rect2d(x0 * fx, y0 * fy, width * fx, height * fy);
      placed.input_rect = cv::Rect2d(0, 0, width, height);
      break;
    }
    case FitMode::letterbox: {
      const double scale = std::min(width / sw, height / sh);
      const int nw = std::clamp(static_cast<int>(std::lround(sw * scale)), 1, width);
      const int nh = std::clamp(static_cast<int>(std::lround(sh * scale)), 1, height);
      const cv::Mat resized = resize_to(source, cv::Size(nw, nh));
      const int x0 = (width - nw) / 2;
      const int y0 = (height - nh) / 2;
      // Mid grey padding (128 ~ 0.5): neutral for models normalised around the data set mean.
      input8 = cv::Mat(target, CV_8UC3, cv::Scalar::all(128));
      resized.copyTo(input8(cv::Rect(x0, y0, nw, nh)));
      placed.source_rect = cv::Rect2d(0, 0, sw, sh);
      placed.input_rect = cv::Rect2d(x0, y0, nw, nh);
      break;
    }
  }

  cv::Mat input;
  input8.convertTo(input, CV_32F, 1.0 / 255.0);
  if (fit == FitMode::letterbox) {
    // Make the padding exactly 0.5 rather than 128/255.
    cv::Mat mask(target, CV_8U, cv::Scalar(255));
    mask(cv::Rect(placed.input_rect)).setTo(0);
    input.setTo(cv::Scalar::all(0.5), mask);
  }
  if (region) *region = placed;
  return input;
}

cv::Mat map_to_source(const cv::Mat& input_map, const InputRegion& region, cv::Size source_size) {
  if (input_map.empty() || source_size.width <= 0 || source_size.height <= 0) {
    throw UsageError("map_to_source needs a non-empty map and a positive source size");
  }
  cv::Mat map32;
  if (input_map.depth() == CV_32F) {
    map32 = input_map;
  } else {
    input_map.convertTo(map32, CV_32F);
  }
  cv::Mat out = cv::Mat::zeros(source_size, map32.type());

  // Integer pixel rectangles: the input region (clipped to the map) and its destination in the
  // source. Rounding the fractional crop edges moves them by at most half a source pixel.
  auto round_rect = [](const cv::Rect2d& r, cv::Size bounds) {
    const int x0 = std::clamp(static_cast<int>(std::lround(r.x)), 0, bounds.width);
    const int y0 = std::clamp(static_cast<int>(std::lround(r.y)), 0, bounds.height);
    const int x1 = std::clamp(static_cast<int>(std::lround(r.x + r.width)), 0, bounds.width);
    const int y1 = std::clamp(static_cast<int>(std::lround(r.y + r.height)), 0, bounds.height);
    return cv::Rect(x0, y0, std::max(0, x1 - x0), std::max(0, y1 - y0));
  };
  cv::Rect from = round_rect(region.input_rect, map32.size());
  const cv::Rect to = round_rect(region.source_rect, source_size);
  if (region.input_rect.width <= 0 || region.input_rect.height <= 0) from = cv::Rect(0, 0, map32.cols, map32.rows);
  if (from.empty() || to.empty()) return out;

  cv::Mat resized;
  const cv::Mat part = map32(from);
  // Bilinear both ways: maps are smooth fields, and area averaging would not help them.
  cv::resize(part, resized, to.size(), 0, 0, cv::INTER_LINEAR);
  resized.copyTo(out(to));
  return out;
}

void write_png(const std::string& path, const cv::Mat& image) {
  cv::Mat bgr;
  if (image.empty() || image.depth() != CV_8U) {
    throw OutputError(fmt::format("{}: cannot write PNG (needs a non-empty 8-bit image)", path));
  }
  switch (image.channels()) {
    case 1:
      bgr = image;
      break;
    case 3:
      cv::cvtColor(image, bgr, cv::COLOR_RGB2BGR);
      break;
    case 4:
      cv::cvtColor(image, bgr, cv::COLOR_RGBA2BGRA);
      break;
    default:
      throw OutputError(fmt::format("{}: cannot write PNG ({} channels)", path, image.channels()));
  }
  encode_and_write(path, bgr);
}

void write_png16(const std::string& path, const cv::Mat& map01) {
  if (map01.empty() || map01.channels() != 1) {
    throw OutputError(fmt::format("{}: cannot write PNG (needs a non-empty single-channel map)", path));
  }
  cv::Mat unit;
  map01.convertTo(unit, CV_32F);
  cv::patchNaNs(unit, 0.0);
  cv::Mat map16;
  unit.convertTo(map16, CV_16U, 65535.0);  // saturates outside [0, 1], rounds to nearest
  encode_and_write(path, map16);
}

}  // namespace cnnvis
