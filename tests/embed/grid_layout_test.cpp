#include "cnnvis/embed/grid_layout.h"

#include <random>
#include <set>
#include <vector>

#include <gtest/gtest.h>

#include "cnnvis/core/errors.h"

namespace cnnvis {
namespace {

TEST(GridLayout, PointsOnGridPositionsKeepTheirCells) {
  // A full 6 x 4 lattice, scaled and shifted: every point maps exactly onto its own cell.
  std::vector<float> xy;
  for (int r = 0; r < 4; ++r) {
    for (int c = 0; c < 6; ++c) {
      xy.push_back(3.f * c - 7.f);
      xy.push_back(3.f * r + 1.f);
    }
  }
  const GridLayout g = snap_to_grid(xy, 6, 4);
  for (int i = 0; i < 24; ++i) EXPECT_EQ(g.cell[i], i);
}

TEST(GridLayout, CrowdedPointsGetDistinctNearbyCells) {
  std::mt19937 gen(3);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<float> xy;
  for (int i = 0; i < 300; ++i) {
    const float cx = i % 2 ? 5.f : -5.f;  // two tight blobs
    xy.push_back(cx + 0.3f * normal(gen));
    xy.push_back(0.3f * normal(gen));
  }
  int columns = 0, rows = 0;
  choose_grid_shape(300, 1.0, 0.85, columns, rows);
  ASSERT_GE(columns * rows, 300);
  EXPECT_LE(columns * rows, 300 / 0.85 + columns + rows);
  const GridLayout g = snap_to_grid(xy, columns, rows);
  std::set<int> cells(g.cell.begin(), g.cell.end());
  EXPECT_EQ(cells.size(), 300u);
  // Left and right blobs stay on their sides of the grid.
  for (int i = 0; i < 300; ++i) {
    const int column = g.cell[i] % columns;
    if (i % 2) EXPECT_GE(column, columns / 2 - 1) << i;
    else EXPECT_LE(column, columns / 2) << i;
  }
  EXPECT_EQ(snap_to_grid(xy, columns, rows).cell, g.cell);  // deterministic
  EXPECT_THROW(snap_to_grid(xy, 10, 10), UsageError);
}

}  // namespace
}  // namespace cnnvis
