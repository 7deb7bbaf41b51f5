// The torch-free geometry of an activation atlas: normalising a 2-D layout, binning it on a grid,
// averaging each cell's activation vectors and attributions, and the whitening matrix of the icons'
// objective (Carter et al., "Activation Atlas", distill.pub 2019; the lucid notebook's recipe).
#pragma once

#include <cstdint>
#include <vector>

namespace cnnvis {

// Lucid's normalize_layout: per axis, the low and high percentiles (numpy's linear interpolation) widened
// by margin times their distance, points clipped to that range, then min-max scaled to [0, 1]. Outliers
// end on the border instead of squeezing everyone else into a corner. xy: n x 2 row-major.
std::vector<float> normalize_atlas_layout(const std::vector<float>& xy, double low_percentile = 1,
                                          double high_percentile = 99, double margin = 0.1);

// numpy.percentile (linear interpolation) of values; q in [0, 100]. values must not be empty.
double percentile(std::vector<double> values, double q);

struct AtlasCellSummary {
  int column = 0, row = 0;        // row 0 at the top (y = 0)
  std::int64_t count = 0;         // samples in the cell
  std::vector<float> mean_activation;  // channels
  std::vector<std::int64_t> members;   // sample rows in the cell, in row order
  // Classes by mean attribution over the cell's samples (a sample without an attribution to a class
  // contributes 0 to that class), highest first, at most top_classes of them.
  std::vector<std::pair<int, float>> top_classes;
  float x = 0, y = 0;             // mean layout position of the members, in [0, 1]
};

struct AtlasBinningOptions {
  int grid = 20;          // cells per side
  int min_count = 3;      // cells with fewer samples are dropped
  int top_classes = 3;
};

// Bins normalised positions (n x 2 in [0, 1]) on a grid x grid lattice: cell column = floor(x * grid),
// clamped to grid - 1 (so x = 1 lands in the last cell); every sample is in exactly one cell. Cells with
// at least min_count samples are returned in row-major order with their mean activation (activations:
// n x channels) and their top attributed classes (attr_classes / attr_values: n x k, k may be 0).
std::vector<AtlasCellSummary> bin_atlas_cells(const std::vector<float>& xy01, const std::vector<float>& activations,
                                              int channels, const std::vector<std::int64_t>& attr_classes,
                                              const std::vector<float>& attr_values, int k,
                                              const AtlasBinningOptions& options);

// S = inverse(A^T A / n + ridge * mean(diag) * I): Lucid's whitening of the direction objective (the icon
// of a cell maximises its mean vector mapped by S, so that directions that are common to every activation
// do not dominate every icon). The ridge keeps S finite when channels are dead or n < channels.
// activations: n x channels. Returns channels x channels, row-major.
std::vector<float> atlas_whitening_matrix(const std::vector<float>& activations, int channels, double ridge = 1e-3);

// v * S for a row vector v (channels) and S from atlas_whitening_matrix.
std::vector<float> apply_whitening(const std::vector<float>& v, const std::vector<float>& s);

// Rows L2-normalised (a zero row stays zero): Euclidean distances between them order neighbours by cosine
// similarity, which is how the atlas lays activations out.
std::vector<float> l2_normalize_rows(const std::vector<float>& data, int cols);

}  // namespace cnnvis
