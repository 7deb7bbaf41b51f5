// The atlas pipeline on top of the t-SNE engine, the grid binning and activation maximisation. No
// tensors here: everything heavy happens in run_tsne and run_activation_max.
#include "cnnvis/methods/activation_atlas.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include <spdlog/spdlog.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/io/canvas.h"
#include "cnnvis/models/loaded_model.h"

namespace cnnvis {

namespace {

// Which samples a max_points subset keeps: a function of each sample's key, number and the seed only.
std::uint64_t sample_hash(const AtlasSample& s, std::uint64_t seed) {
  return SplitMix64(atlas_key_hash(s.key, seed) + static_cast<std::uint64_t>(s.sample)).next();
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// The rows an atlas is made of: the class filter first, then the max_points subset.
std::vector<std::int64_t> select_rows(const AtlasCollection& c, const ActivationAtlasOptions& o) {
  std::vector<std::int64_t> rows;
  if (o.class_filter >= 0) {
    if (c.info.attribution_classes == 0) {
      throw UsageError("a class atlas needs attributions; collect with --attribution auto, all or top:K");
    }
    if (o.class_filter >= c.info.num_classes) {
      throw UsageError("class " + std::to_string(o.class_filter) + " is out of range 0.." +
                       std::to_string(c.info.num_classes - 1));
    }
    std::vector<char> keep(static_cast<std::size_t>(c.rows), 0);
    std::vector<std::pair<float, std::int64_t>> scored;
    for (std::int64_t r = 0; r < c.rows; ++r) {
      if (top_attributed_class(c, r) == o.class_filter) keep[r] = 1;
      const float a = attribution_to(c, r, o.class_filter);
      if (!std::isnan(a)) scored.emplace_back(a, r);
    }
    const auto top = static_cast<std::size_t>(std::min<std::int64_t>(o.class_top, static_cast<std::int64_t>(scored.size())));
    std::partial_sort(scored.begin(), scored.begin() + top, scored.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    for (std::size_t i = 0; i < top; ++i) keep[scored[i].second] = 1;
    for (std::int64_t r = 0; r < c.rows; ++r)
      if (keep[r]) rows.push_back(r);
  } else {
    rows.resize(static_cast<std::size_t>(c.rows));
    std::iota(rows.begin(), rows.end(), 0);
  }
  if (o.max_points > 0 && static_cast<std::int64_t>(rows.size()) > o.max_points) {
    std::vector<std::pair<std::uint64_t, std::int64_t>> keyed;
    for (std::int64_t r : rows) keyed.emplace_back(sample_hash(c.samples[r], o.tsne.seed), r);
    std::nth_element(keyed.begin(), keyed.begin() + o.max_points, keyed.end());
    keyed.resize(static_cast<std::size_t>(o.max_points));
    rows.clear();
    for (const auto& k : keyed) rows.push_back(k.second);
    std::sort(rows.begin(), rows.end());
  }
  return rows;
}

void check_model(const LoadedModel& model, const AtlasCollectionInfo& info) {
  if (model.card().name != info.model) {
    throw UsageError("the atlas was collected with model " + info.model + ", not " + model.card().name);
  }
  if (model.resolve_layer(info.layer) != info.layer) {
    throw UsageError("layer " + info.layer + " of the collection is not a layer of " + model.card().name);
  }
  if (!info.weights_sha256.empty() && !model.weights_sha256().empty() && info.weights_sha256 != model.weights_sha256()) {
    throw UsageError("the atlas was collected with other weights (sha256 " + info.weights_sha256.substr(0, 12) +
                     "...) than " + model.weights_path() + " (" + model.weights_sha256().substr(0, 12) + "...)");
  }
}

}  // namespace

ActivationAtlasResult run_activation_atlas(LoadedModel* model, const AtlasCollection& c, const ActivationAtlasOptions& o) {
  if (o.grids.empty()) throw UsageError("give at least one atlas grid size");
  for (int g : o.grids)
    if (g < 1 || g > 1000) throw UsageError("atlas grid sizes must be between 1 and 1000, not " + std::to_string(g));
  if (o.icons) {
    if (model == nullptr) throw UsageError("atlas icons need the model");
    check_model(*model, c.info);
    if (o.icon_attempts < 1 || o.icon_batch < 1) throw UsageError("icon attempts and batch must be >= 1");
  }
  if (!o.layout.empty() && o.layout.size() != static_cast<std::size_t>(c.rows) * 2) {
    throw UsageError("the layout has " + std::to_string(o.layout.size() / 2) + " points for " + std::to_string(c.rows) +
                     " samples");
  }
  ActivationAtlasResult result;
  result.rows = select_rows(c, o);
  const auto n = static_cast<std::int64_t>(result.rows.size());
  const int channels = c.info.channels, k = c.info.attribution_classes;
  if (n < 4) {
    throw UsageError("an atlas needs at least 4 samples, got " + std::to_string(n) +
                     (o.class_filter >= 0 ? " for class " + std::to_string(o.class_filter) : std::string()));
  }
  std::vector<float> activations, attr_values;
  std::vector<std::int64_t> attr_classes;
  activations.reserve(static_cast<std::size_t>(n * channels));
  for (std::int64_t r : result.rows) {
    activations.insert(activations.end(), c.activations.begin() + r * channels, c.activations.begin() + (r + 1) * channels);
    attr_classes.insert(attr_classes.end(), c.attr_classes.begin() + r * k, c.attr_classes.begin() + (r + 1) * k);
    attr_values.insert(attr_values.end(), c.attr_values.begin() + r * k, c.attr_values.begin() + (r + 1) * k);
  }

  const auto layout_start = std::chrono::steady_clock::now();
  if (!o.layout.empty()) {
    for (std::int64_t r : result.rows) {
      result.layout.push_back(o.layout[2 * r]);
      result.layout.push_back(o.layout[2 * r + 1]);
    }
    for (float v : result.layout)
      if (!std::isfinite(v)) throw UsageError("the given layout has non-finite coordinates");
  } else {
    TsneOptions t = o.tsne;
    if (o.progress) {
      const ProgressCallback progress = o.progress;
      t.progress = [progress](const TsneProgress& p) {
        progress(static_cast<std::size_t>(p.iteration), static_cast<std::size_t>(p.iterations), "t-SNE iterations");
      };
    }
    const std::vector<float> directions = l2_normalize_rows(activations, channels);
    result.tsne = run_tsne(directions.data(), static_cast<int>(n), channels, t);
    result.tsne_run = true;
    result.layout = result.tsne.coordinates;
  }
  result.layout01 = normalize_atlas_layout(result.layout, o.low_percentile, o.high_percentile, o.margin);
  result.layout_s = seconds_since(layout_start);

  std::vector<float> whitening;
  if (o.icons && o.whiten) whitening = atlas_whitening_matrix(activations, channels);
  std::size_t total_cells = 0;
  for (int g : o.grids) {
    ActivationAtlasGrid grid;
    grid.grid = g;
    AtlasBinningOptions b;
    b.grid = g;
    b.min_count = o.min_count;
    b.top_classes = o.top_classes;
    grid.cells = bin_atlas_cells(result.layout01, activations, channels, attr_classes, attr_values, k, b);
    total_cells += grid.cells.size();
    result.grids.push_back(std::move(grid));
  }
  if (!o.icons) return result;

  const auto icons_start = std::chrono::steady_clock::now();
  std::size_t done = 0;
  for (std::size_t gi = 0; gi < result.grids.size(); ++gi) {
    ActivationAtlasGrid& grid = result.grids[gi];
    grid.icons.resize(grid.cells.size());
    grid.icon_objective.resize(grid.cells.size(), 0.0f);
    for (std::size_t start = 0; start < grid.cells.size(); start += static_cast<std::size_t>(o.icon_batch)) {
      const std::size_t end = std::min(grid.cells.size(), start + static_cast<std::size_t>(o.icon_batch));
      std::vector<Objective> objectives;
      for (std::size_t i = start; i < end; ++i) {
        Objective obj;
        obj.kind = ObjectiveKind::direction_neuron;
        obj.layer = c.info.layer;
        obj.direction = o.whiten ? apply_whitening(grid.cells[i].mean_activation, whitening) : grid.cells[i].mean_activation;
        obj.cosine_power = o.cosine_power;
        objectives.push_back(std::move(obj));
      }
      ActivationMaxOptions icon = o.icon;
      icon.images_per_unit = o.icon_attempts;
      icon.diversity = 0;
      icon.initial_images.clear();
      icon.progress = nullptr;
      // Each batch of cells its own noise and transforms, the same whatever else is rendered.
      icon.seed = SplitMix64(o.icon.seed ^ ((static_cast<std::uint64_t>(grid.grid) << 32) + start)).next();
      const auto results = run_activation_max(*model, objectives, icon);
      for (std::size_t u = 0; u < objectives.size(); ++u) {
        const ActivationMaxResult* best = nullptr;
        for (int a = 0; a < o.icon_attempts; ++a) {
          const ActivationMaxResult& r = results[u * o.icon_attempts + a];
          if (best == nullptr || r.objective_final > best->objective_final) best = &r;
        }
        grid.icons[start + u] = best->image;
        grid.icon_objective[start + u] = best->objective_final;
      }
      done += end - start;
      if (o.progress) o.progress(done, total_cells, "icons");
    }
  }
  result.icons_s = seconds_since(icons_start);
  spdlog::debug("atlas: {} samples laid out in {:.1f} s, {} icons in {:.1f} s", n, result.layout_s, total_cells,
                result.icons_s);
  return result;
}

}  // namespace cnnvis
