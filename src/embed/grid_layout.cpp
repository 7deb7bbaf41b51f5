#include "cnnvis/embed/grid_layout.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include "cnnvis/core/errors.h"

namespace cnnvis {

void choose_grid_shape(int n, double aspect, double fill_factor, int& columns, int& rows) {
  if (n < 1) {
    columns = rows = 0;
    return;
  }
  aspect = std::clamp(std::isfinite(aspect) ? aspect : 1.0, 0.25, 4.0);
  const double cells = n / std::clamp(fill_factor, 0.1, 1.0);
  columns = std::max(1, static_cast<int>(std::ceil(std::sqrt(cells * aspect))));
  rows = std::max(1, static_cast<int>(std::ceil(cells / columns)));
  while (static_cast<long long>(columns) * rows < n) ++rows;
}

GridLayout snap_to_grid(const std::vector<float>& xy, int columns, int rows) {
  const int n = static_cast<int>(xy.size() / 2);
  if (columns < 1 || rows < 1 || static_cast<long long>(columns) * rows < n) {
    throw UsageError("grid of " + std::to_string(columns) + " x " + std::to_string(rows) + " cells cannot hold " +
                     std::to_string(n) + " points");
  }
  GridLayout out;
  out.columns = columns;
  out.rows = rows;
  out.cell.assign(n, -1);
  if (n == 0) return out;
  float min_x = xy[0], max_x = xy[0], min_y = xy[1], max_y = xy[1];
  for (int i = 1; i < n; ++i) {
    min_x = std::min(min_x, xy[2 * i]);
    max_x = std::max(max_x, xy[2 * i]);
    min_y = std::min(min_y, xy[2 * i + 1]);
    max_y = std::max(max_y, xy[2 * i + 1]);
  }
  const double sx = max_x > min_x ? (columns - 1) / static_cast<double>(max_x - min_x) : 0.0;
  const double sy = max_y > min_y ? (rows - 1) / static_cast<double>(max_y - min_y) : 0.0;
  std::vector<double> gx(n), gy(n), centre_distance(n);
  const double cx = 0.5 * (columns - 1), cy = 0.5 * (rows - 1);
  for (int i = 0; i < n; ++i) {
    gx[i] = (xy[2 * i] - min_x) * sx;
    gy[i] = (xy[2 * i + 1] - min_y) * sy;
    centre_distance[i] = std::hypot(gx[i] - cx, gy[i] - cy);
  }
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return centre_distance[a] < centre_distance[b]; });
  std::vector<char> taken(static_cast<std::size_t>(columns) * rows, 0);
  for (int i : order) {
    const int c0 = std::clamp(static_cast<int>(std::lround(gx[i])), 0, columns - 1);
    const int r0 = std::clamp(static_cast<int>(std::lround(gy[i])), 0, rows - 1);
    double best = std::numeric_limits<double>::infinity();
    int best_cell = -1;
    // Square rings of growing radius; a ring at radius r cannot hold a cell nearer than r - 0.5.
    for (int radius = 0;; ++radius) {
      if (best_cell >= 0 && radius - 0.5 > std::sqrt(best)) break;
      if (radius > columns + rows) break;
      for (int r = r0 - radius; r <= r0 + radius; ++r) {
        if (r < 0 || r >= rows) continue;
        const bool edge_row = r == r0 - radius || r == r0 + radius;
        const int step = edge_row ? 1 : 2 * radius;
        for (int c = c0 - radius; c <= c0 + radius; c += std::max(1, step)) {
          if (c < 0 || c >= columns) continue;
          const int cell = r * columns + c;
          if (taken[cell]) continue;
          const double d = (c - gx[i]) * (c - gx[i]) + (r - gy[i]) * (r - gy[i]);
          if (d < best || (d == best && cell < best_cell)) {
            best = d;
            best_cell = cell;
          }
        }
      }
    }
    taken[best_cell] = 1;
    out.cell[i] = best_cell;
  }
  return out;
}

}  // namespace cnnvis
