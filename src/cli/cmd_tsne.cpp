// cnnvis tsne: a 2-D t-SNE map of image codes taken at a layer (or of precomputed feature vectors), with
// coordinates (JSON, CSV), a scatter plot coloured by label, an image map and a grid-snapped image map.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include <opencv2/imgproc.hpp>
#include <spdlog/spdlog.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/core/text.h"
#include "cnnvis/embed/grid_layout.h"
#include "cnnvis/embed/tsne.h"
#include "cnnvis/io/embedding_plot.h"
#include "cnnvis/io/files.h"
#include "cnnvis/io/image_io.h"
#include "cnnvis/io/manifest.h"
#include "cnnvis/io/npy.h"
#include "cnnvis/methods/image_codes.h"
#include "commands.h"
#include "common.h"

namespace cnnvis::cli {

namespace fs = std::filesystem;

namespace {
struct TsneCommandOptions {
  ModelOptions model;
  InputOptions inputs;
  std::string out = "cnnvis-out";
  std::string layer;
  std::string pooling = "mean";
  std::string features, labels, label_names;
  double perplexity = 30;
  int iterations = 1000;
  int exaggeration_iterations = 250;
  double exaggeration = 12;
  double learning_rate = 0;
  std::string init = "pca";
  std::string method = "auto";
  int pca_dims = 50;
  std::uint64_t seed = 42;
  int plot_size = 1400;
  int map_size = 2400;
  int thumb_size = 40;
  int max_grid_side = 8000;
  bool no_images = false;
};

// Everything the embedding step needs, from either source.
struct EmbeddingInput {
  int rows = 0, dims = 0;
  std::vector<float> data;                // rows x dims
  std::vector<int> labels;                // empty when none
  std::vector<std::string> label_names;   // by label value
  std::vector<std::string> paths;         // empty in --features mode
  std::vector<cv::Mat> thumbnails;        // empty when none
};

std::vector<int> read_labels(const std::string& path, int rows) {
  const NpyArray a = read_npy(path);
  if (a.numel() != rows) {
    throw InputError(path + ": " + std::to_string(a.numel()) + " labels for " + std::to_string(rows) + " feature rows");
  }
  std::vector<int> labels;
  for (float v : a.to_float()) {
    if (!std::isfinite(v) || v != std::floor(v) || v < -1 || v > 1e6) {
      throw InputError(path + ": labels must be integers in [-1, 1000000]");
    }
    labels.push_back(static_cast<int>(v));
  }
  return labels;
}

EmbeddingInput load_features(const TsneCommandOptions& o) {
  EmbeddingInput in;
  const NpyArray a = read_npy(o.features);
  if (a.shape.size() != 2) {
    throw InputError(o.features + ": expected a 2-D array (N x D), got " + std::to_string(a.shape.size()) + " dimensions");
  }
  if (a.shape[0] < 4 || a.shape[1] < 1) throw InputError(o.features + ": need at least 4 rows and 1 column");
  if (a.shape[0] > 100000000 / std::max<std::int64_t>(1, a.shape[1]) * 100) throw InputError(o.features + ": too large");
  in.rows = static_cast<int>(a.shape[0]);
  in.dims = static_cast<int>(a.shape[1]);
  in.data = a.to_float();
  for (std::size_t i = 0; i < in.data.size(); ++i) {
    if (!std::isfinite(in.data[i])) {
      throw InputError(o.features + ": non-finite value at row " + std::to_string(i / in.dims));
    }
  }
  if (!o.labels.empty()) in.labels = read_labels(o.labels, in.rows);
  if (!o.label_names.empty()) in.label_names = split(o.label_names, ',');
  return in;
}

cv::Mat thumbnail_of(const cv::Mat& rgb, int side) {
  const double scale = static_cast<double>(side) / std::max(rgb.cols, rgb.rows);
  if (scale >= 1) return rgb.clone();
  cv::Mat out;
  cv::resize(rgb, out, cv::Size(std::max(1, cvRound(rgb.cols * scale)), std::max(1, cvRound(rgb.rows * scale))), 0, 0,
             cv::INTER_AREA);
  return out;
}

void write_outputs(const TsneCommandOptions& o, const EmbeddingInput& in, const TsneResult& r, Manifest* manifest,
                   nlohmann::json header) {
  const fs::path out(o.out);
  const int n = in.rows;
  auto name_of = [&](int label) -> std::string {
    if (label < 0) return "";
    return label < static_cast<int>(in.label_names.size()) ? in.label_names[label] : std::to_string(label);
  };
  // Coordinates: CSV and JSON.
  std::ostringstream csv;
  csv << "index,x,y,label,label_name,path\n";
  nlohmann::json points = nlohmann::json::array();
  char buf[64];
  for (int i = 0; i < n; ++i) {
    const int label = in.labels.empty() ? -1 : in.labels[i];
    const std::string path = in.paths.empty() ? "" : in.paths[i];
    std::snprintf(buf, sizeof(buf), "%.7g,%.7g", r.coordinates[2 * i], r.coordinates[2 * i + 1]);
    csv << i << ',' << buf << ',' << (label < 0 ? "" : std::to_string(label)) << ',' << csv_field(name_of(label)) << ','
        << csv_field(path) << '\n';
    nlohmann::json p = {{"index", i}, {"x", r.coordinates[2 * i]}, {"y", r.coordinates[2 * i + 1]}};
    if (label >= 0) p["label"] = label, p["label_name"] = name_of(label);
    if (!path.empty()) p["path"] = path;
    points.push_back(std::move(p));
  }
  write_text_atomically((out / "tsne.csv").string(), csv.str());
  nlohmann::json kl_history = nlohmann::json::array();
  for (const auto& [it, kl] : r.kl_history) kl_history.push_back({{"iteration", it}, {"kl", kl}});
  header["tsne"] = {{"method", tsne_method_name(r.method)},
                    {"perplexity", r.perplexity},
                    {"neighbours", r.neighbours},
                    {"learning_rate", r.learning_rate},
                    {"iterations", o.iterations},
                    {"exaggeration", o.exaggeration},
                    {"exaggeration_iterations", o.exaggeration_iterations},
                    {"init", o.init},
                    {"seed", o.seed},
                    {"input_dims", r.input_dims},
                    {"reduced_dims", r.reduced_dims},
                    {"kl", r.kl},
                    {"kl_history", kl_history},
                    {"seconds", {{"pca", r.pca_s}, {"knn", r.knn_s}, {"affinities", r.affinities_s}, {"optimise", r.optimise_s}}}};
  nlohmann::json doc = header;
  doc["points"] = std::move(points);
  write_text_atomically((out / "tsne.json").string(), doc.dump(1) + "\n");
  write_npy((out / "tsne_coordinates.npy").string(), r.coordinates.data(), {n, 2});

  ScatterOptions scatter;
  scatter.size = o.plot_size;
  scatter.title = cv::format("t-SNE, %d points, perplexity %.3g, KL %.3f", n, r.perplexity, r.kl);
  write_png((out / "tsne_scatter.png").string(), render_scatter(r.coordinates, in.labels, in.label_names, scatter));
  std::vector<std::string> written = {"tsne.csv", "tsne.json", "tsne_coordinates.npy", "tsne_scatter.png"};
  if (!in.thumbnails.empty()) {
    write_png((out / "tsne_map.png").string(),
              render_image_map(r.coordinates, in.thumbnails, in.labels, o.map_size, o.thumb_size));
    float min_x = r.coordinates[0], max_x = min_x, min_y = r.coordinates[1], max_y = min_y;
    for (int i = 0; i < n; ++i) {
      min_x = std::min(min_x, r.coordinates[2 * i]);
      max_x = std::max(max_x, r.coordinates[2 * i]);
      min_y = std::min(min_y, r.coordinates[2 * i + 1]);
      max_y = std::max(max_y, r.coordinates[2 * i + 1]);
    }
    int columns = 0, rows = 0;
    choose_grid_shape(n, (max_x - min_x) / std::max(1e-12f, max_y - min_y), 0.85, columns, rows);
    const GridLayout grid = snap_to_grid(r.coordinates, columns, rows);
    const int cell = std::max(4, std::min(o.thumb_size, o.max_grid_side / std::max(columns, rows)));
    write_png((out / "tsne_grid.png").string(),
              render_grid_map(grid.cell, columns, rows, in.thumbnails, in.labels, cell));
    // Grid cells next to the points, so other tools can rebuild the grid picture.
    std::ostringstream grid_csv;
    grid_csv << "index,column,row\n";
    for (int i = 0; i < n; ++i) grid_csv << i << ',' << grid.cell[i] % columns << ',' << grid.cell[i] / columns << '\n';
    write_text_atomically((out / "tsne_grid.csv").string(), grid_csv.str());
    written.insert(written.end(), {"tsne_map.png", "tsne_grid.png", "tsne_grid.csv"});
  }
  if (manifest) {
    manifest->header()["tsne"] = header["tsne"];
    manifest->header()["outputs"] = written;
    manifest->write();
  }
  spdlog::info("t-SNE of {} points ({} -> {} dims, {} repulsion): KL {:.4f}; pca {:.2f} s, knn {:.2f} s, "
               "affinities {:.2f} s, optimisation {:.2f} s",
               n, r.input_dims, r.reduced_dims, tsne_method_name(r.method), r.kl, r.pca_s, r.knn_s, r.affinities_s,
               r.optimise_s);
  std::printf("%s\n", (out / "tsne.csv").string().c_str());
}

TsneOptions engine_options(const TsneCommandOptions& o) {
  TsneOptions t;
  t.perplexity = o.perplexity;
  t.iterations = o.iterations;
  t.exaggeration_iterations = o.exaggeration_iterations;
  t.early_exaggeration = o.exaggeration;
  t.learning_rate = o.learning_rate;
  t.init = o.init;
  t.method = parse_tsne_method(o.method);
  t.pca_dims = o.pca_dims;
  t.seed = o.seed;
  t.threads = global_options().threads;
  if (t.init != "pca" && t.init != "random") throw UsageError("--init must be pca or random");
  return t;
}

void attach_progress(TsneOptions& t) {
  auto progress = std::make_shared<Progress>("t-SNE iterations", static_cast<std::size_t>(t.iterations));
  t.progress = [progress](const TsneProgress& p) {
    progress->update(static_cast<std::size_t>(p.iteration));
    if (p.kl >= 0) spdlog::debug("t-SNE iteration {}: KL {:.4f}", p.iteration, p.kl);
    if (p.iteration == p.iterations) progress->finish();
  };
}

}  // namespace

void setup_tsne(CLI::App& app) {
  auto o = std::make_shared<TsneCommandOptions>();
  auto* cmd = app.add_subcommand("tsne", "2-D t-SNE map of image codes at a layer, or of feature vectors (.npy)");
  add_model_options(cmd, o->model);
  add_input_options(cmd, o->inputs);
  // Neither a model nor images are needed with --features.
  cmd->get_option("--model")->required(false);
  cmd->get_option("inputs")->required(false);
  cmd->add_option("-o,--out", o->out, "output directory")->capture_default_str();
  cmd->add_option("-l,--layer", o->layer, "layer name or alias whose output is the code (default: the card's)");
  cmd->add_option("--pooling", o->pooling, "spatial pooling of C x H x W codes: mean or max")->capture_default_str();
  cmd->add_option("--features", o->features, "embed the rows of this float N x D .npy instead of images");
  cmd->add_option("--labels", o->labels, "with --features: N integer labels (.npy) for the colours");
  cmd->add_option("--label-names", o->label_names, "with --labels: comma-separated names by label value");
  cmd->add_option("--perplexity", o->perplexity, "effective number of neighbours")->capture_default_str()->check(CLI::Range(1.0, 10000.0));
  cmd->add_option("--iterations", o->iterations, "gradient steps in total")->capture_default_str()->check(CLI::Range(1, 100000));
  cmd->add_option("--exaggeration", o->exaggeration, "early exaggeration factor")->capture_default_str()->check(CLI::Range(1.0, 1000.0));
  cmd->add_option("--exaggeration-iterations", o->exaggeration_iterations, "steps with early exaggeration")
      ->capture_default_str()->check(CLI::Range(0, 100000));
  cmd->add_option("--learning-rate", o->learning_rate, "step size; 0: max(200, N / exaggeration)")->capture_default_str()
      ->check(CLI::Range(0.0, 1e9));
  cmd->add_option("--init", o->init, "initial layout: pca or random")->capture_default_str();
  cmd->add_option("--method", o->method, "repulsion: auto, exact (O(N^2)) or fft")->capture_default_str();
  cmd->add_option("--pca-dims", o->pca_dims, "reduce codes to this many principal components first (0: never)")
      ->capture_default_str()->check(CLI::Range(0, 100000));
  cmd->add_option("--seed", o->seed, "random seed (PCA sketch, random init)")->capture_default_str();
  cmd->add_option("--plot-size", o->plot_size, "scatter plot side in pixels")->capture_default_str()->check(CLI::Range(200, 20000));
  cmd->add_option("--map-size", o->map_size, "image map side in pixels")->capture_default_str()->check(CLI::Range(200, 20000));
  cmd->add_option("--thumb-size", o->thumb_size, "thumbnail side in pixels")->capture_default_str()->check(CLI::Range(4, 512));
  cmd->add_flag("--no-images", o->no_images, "do not keep thumbnails (no image maps; less memory)");
  cmd->callback([o] {
    ensure_output_dir(o->out);
    TsneOptions t = engine_options(*o);
    attach_progress(t);
    if (!o->features.empty()) {
      if (!o->inputs.inputs.empty()) throw UsageError("give either --features or image inputs, not both");
      const EmbeddingInput in = load_features(*o);
      const TsneResult r = run_tsne(in.data.data(), in.rows, in.dims, t);
      nlohmann::json header = {{"tool", "cnnvis"}, {"command", "tsne"}, {"features", o->features}, {"labels", o->labels},
                               {"rows", in.rows}, {"dims", in.dims}};
      write_outputs(*o, in, r, nullptr, header);
      return;
    }
    if (!o->labels.empty()) throw UsageError("--labels goes with --features; images are coloured by predicted class");
    if (o->inputs.inputs.empty()) throw UsageError("tsne: give image inputs (files or folders) or --features X.npy");
    if (o->model.model.empty()) throw UsageError("tsne: --model is required with image inputs");
    ModelSession session = open_model(o->model);
    LoadedModel& model = *session.model;
    const std::string layer = model.resolve_layer(o->layer.empty() ? model.card().default_layer : o->layer);
    const CodePooling pooling = parse_code_pooling(o->pooling);
    Manifest manifest(o->out, "tsne");
    describe_run(manifest, session, {{"layer", layer}, {"pooling", o->pooling}, {"fit", o->inputs.fit}});
    EmbeddingInput in;
    in.label_names = model.card().labels;
    std::vector<ManifestEntry*> entries;
    auto process = [&](std::vector<BatchItem>& batch) {
      std::vector<cv::Mat> inputs;
      for (auto& item : batch) inputs.push_back(item.input);
      const ImageCodes codes = compute_image_codes(model, inputs, layer, pooling);
      for (std::size_t i = 0; i < batch.size(); ++i) {
        in.dims = codes.dims;
        in.data.insert(in.data.end(), codes.codes[i].begin(), codes.codes[i].end());
        in.labels.push_back(codes.top[i].index);
        in.paths.push_back(batch[i].path);
        if (!o->no_images) in.thumbnails.push_back(thumbnail_of(batch[i].image.rgb, o->thumb_size));
        batch[i].entry->predictions = predictions_json({codes.top[i]});
        batch[i].entry->extra["tsne_index"] = in.rows++;
      }
    };
    run_batches(o->inputs, model, manifest, process);
    if (in.rows < 4) {
      throw InputError("tsne: only " + std::to_string(in.rows) + " input(s) could be read; t-SNE needs at least 4");
    }
    write_npy((fs::path(o->out) / "codes.npy").string(), in.data.data(), {in.rows, in.dims});
    const TsneResult r = run_tsne(in.data.data(), in.rows, in.dims, t);
    nlohmann::json header = {{"tool", "cnnvis"}, {"command", "tsne"}, {"model", model.card().name}, {"layer", layer},
                             {"pooling", o->pooling}, {"rows", in.rows}, {"dims", in.dims}};
    write_outputs(*o, in, r, &manifest, header);
    command_exit_code() = batch_exit_code(manifest);
  });
}

}  // namespace cnnvis::cli
