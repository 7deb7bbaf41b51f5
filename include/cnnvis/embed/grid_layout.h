// Snapping a 2-D embedding onto a grid with one point per cell (an image map without overlaps).
#pragma once

#include <vector>

namespace cnnvis {

struct GridLayout {
  int columns = 0, rows = 0;
  std::vector<int> cell;  // per point: row * columns + column; every cell holds at most one point
};

// Grid shape for n points whose layout has the given aspect ratio (width / height): columns * rows >= n,
// close to the aspect, with a little slack (fill <= fill_factor) so points can stay near their place.
void choose_grid_shape(int n, double aspect, double fill_factor, int& columns, int& rows);

// Greedy nearest free cell: coordinates are scaled to the grid's extent, points are placed in order of
// their distance from the layout's centre (inner points first, so displacement is pushed outwards), and
// each takes the free cell nearest to its scaled position (Euclidean; ties to the lower cell index).
// Deterministic. xy: n x 2. Throws UsageError when the grid has fewer cells than points.
GridLayout snap_to_grid(const std::vector<float>& xy, int columns, int rows);

}  // namespace cnnvis
