// Pictures of a 2-D embedding: a labelled scatter plot with a legend, an image map (a thumbnail at each
// point's place) and a grid map (thumbnails snapped to a grid, no overlaps).
#pragma once

#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

namespace cnnvis {

// Distinct colours (RGB): the 20 of matplotlib's tab20 reordered so the first 10 are tab10, then hues
// spaced by the golden angle.
cv::Scalar label_colour(int label);

struct ScatterOptions {
  int size = 1200;             // plot area side in pixels (a legend panel is added on the right)
  int point_radius = 0;        // 0: from the number of points
  std::string title;
};

// xy: n x 2; labels: n values (-1: unlabelled, drawn grey) or empty; names[label] for the legend (a
// missing name shows the number). Returns CV_8UC3 RGB.
cv::Mat render_scatter(const std::vector<float>& xy, const std::vector<int>& labels,
                       const std::vector<std::string>& names, const ScatterOptions& options = {});

// Thumbnails (CV_8UC3 RGB, any size; scaled to fit thumb_size) centred at their points on a size x size
// white canvas, drawn in order. When labels are given each thumbnail gets a border in its label colour.
cv::Mat render_image_map(const std::vector<float>& xy, const std::vector<cv::Mat>& thumbnails,
                         const std::vector<int>& labels, int size, int thumb_size);

// Thumbnails in grid cells (cell[i] = row * columns + column), each cell cell_size pixels.
cv::Mat render_grid_map(const std::vector<int>& cell, int columns, int rows, const std::vector<cv::Mat>& thumbnails,
                        const std::vector<int>& labels, int cell_size);

// Writes a short caption into the bottom of each grid cell of a picture made by render_grid_map (same
// cell, columns, rows and cell_size), on a translucent white band so it reads over any icon. Captions
// are cut to fit the cell. Empty captions are skipped.
void caption_grid_map(cv::Mat& canvas, const std::vector<int>& cell, int columns, int rows, int cell_size,
                      const std::vector<std::string>& captions);

// Where render_scatter / render_image_map put a point (for tests): the plot-area pixel of xy[i].
cv::Point2f embedding_to_pixel(const std::vector<float>& xy, std::size_t i, int size, int margin);

}  // namespace cnnvis
