// Animated GIF (GIF89a, one global palette, LZW), written incrementally so that frames need not be
// kept in memory: the project's own encoder, since it links no OpenCV video module. Used by the
// training movie and by activation-max's zoom movies.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

namespace cnnvis {

// The movie's fixed 256-colour palette (RGB triples): 128 steps of the diverging colormap, so that the
// maps keep their exact colours (white included), plus a 5x5x5 colour cube and greys for the sample
// images and the text.
const std::vector<cv::Vec3b>& movie_palette();

// A palette for frames that look like photographs (feature visualisations, zoom movies): a 6x7x6 colour
// cube plus four greys; GifWriter dithers to it with a fixed 4x4 Bayer pattern, so still areas do not
// flicker between frames.
const std::vector<cv::Vec3b>& image_palette();

class GifWriter {
 public:
  // delay_cs: time per frame in hundredths of a second; the animation loops forever. Throws OutputError.
  GifWriter(const std::string& path, int width, int height, int delay_cs = 25);
  // The same with image_palette() and ordered dithering (photo_frames) or with movie_palette().
  GifWriter(const std::string& path, int width, int height, int delay_cs, bool photo_frames);
  ~GifWriter();
  GifWriter(const GifWriter&) = delete;
  GifWriter& operator=(const GifWriter&) = delete;

  // frame: CV_8UC3 RGB of the writer's size; each pixel becomes the nearest palette colour.
  void add_frame(const cv::Mat& frame_rgb);
  // Writes the trailer and closes the file (also done by the destructor, which cannot report errors).
  void close();
  int frames() const { return frames_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int width_, height_, delay_cs_;
  bool photo_ = false;
  int frames_ = 0;
  std::ofstream out_;
  bool closed_ = false;
};

// LZW-compressed GIF image data for palette indices (min code size 8), as data sub-blocks ending with
// the zero-length block terminator. Exposed for tests.
std::vector<std::uint8_t> gif_lzw_encode(const std::vector<std::uint8_t>& indices);

// Counts the frames of a GIF file (graphic control extensions followed by an image), checking the
// block structure. Returns -1 when the file is not a well-formed GIF89a. For tests and checks.
int count_gif_frames(const std::string& path);

}  // namespace cnnvis
