// cnnvis demo: the README's first command. Runs prediction and every explanation method on a few
// Fashion-MNIST test canvases with the demo model (Grad-CAM family, guided backprop, SmoothGrad,
// occlusion) and shows what the network learned (first-layer filters, feature visualisations by depth,
// a t-SNE map and an activation atlas of more test canvases); writes a browsable result: per-canvas
// contact sheets, overlays, raw maps, run-level pictures, manifest.json and index.html.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/imgproc.hpp>

#include "cnnvis/core/errors.h"
#include "cnnvis/core/runtime.h"
#include "cnnvis/embed/tsne.h"
#include "cnnvis/io/canvas.h"
#include "cnnvis/io/colormap.h"
#include "cnnvis/io/embedding_plot.h"
#include "cnnvis/io/html_index.h"
#include "cnnvis/io/idx.h"
#include "cnnvis/io/manifest.h"
#include "cnnvis/io/render.h"
#include "cnnvis/methods/activation_atlas.h"
#include "cnnvis/methods/activation_max.h"
#include "cnnvis/methods/atlas_collect.h"
#include "cnnvis/methods/backprop.h"
#include "cnnvis/methods/filters.h"
#include "cnnvis/methods/gradcam.h"
#include "cnnvis/methods/image_codes.h"
#include "cnnvis/methods/occlusion.h"
#include "cnnvis/methods/pointing_game.h"
#include "cnnvis/methods/predict.h"
#include "cnnvis/methods/saliency.h"
#include "cnnvis/methods/train.h"
#include "commands.h"
#include "common.h"

namespace cnnvis::cli {

namespace {

struct DemoOptions {
  ModelOptions model;
  std::string out = "demo-out";
  std::string data_dir = kFashionMnistDir;
  int per_class = 1;
  int scale = 4;  // canvases are 64 px: pictures are enlarged for viewing
  int map_canvases = 300;  // test canvases for the t-SNE map and the atlas (0: leave both out)
  int fv_steps = 128;      // feature-visualisation steps (filters, layer sheet, atlas icons)
};

// One explanation view of the demo: a name, a map per canvas at the model input size (scored by the
// pointing game), and optionally a picture per canvas to show instead of the map's overlay.
struct DemoView {
  std::string name;
  std::vector<cv::Mat> maps;
  std::vector<cv::Mat> pictures;  // CV_8UC3 RGB at input size; empty: overlay the map
};

cv::Mat normalised(const cv::Mat& map) {
  double lo, hi;
  cv::minMaxLoc(map, &lo, &hi);
  return (map - lo) / (hi - lo + 1e-7);
}

cv::Mat enlarge(const cv::Mat& image, int scale, int interpolation) {
  cv::Mat out;
  cv::resize(image, out, cv::Size(), scale, scale, interpolation);
  return out;
}

cv::Mat to_rgb8(const cv::Mat& rgb01) {
  cv::Mat out;
  rgb01.convertTo(out, CV_8UC3, 255.0);
  return out;
}

// "What the network learned": first-layer filters, four units of every ReLU stage by feature
// visualisation (rows by depth), and, over more test canvases, a t-SNE map of the pooled codes and an
// activation atlas of the last stage. Each picture goes into the output directory and the manifest
// header (index.html shows them as run-level pictures).
void write_learned_views(LoadedModel& model, const DemoOptions& o, const FashionMnistSplit& test, Manifest& manifest) {
  namespace fs = std::filesystem;
  const ModelCard& card = model.card();
  const fs::path out(o.out);
  nlohmann::json views = nlohmann::json::object();

  const FilterBank filters = read_filters(model, "first");
  std::vector<SheetCell> filter_cells;
  for (int c = 0; c < filters.out_channels; ++c) filter_cells.push_back({filter_rgb_tile(filters, c, 48), std::to_string(c)});
  SheetOptions filter_sheet;
  filter_sheet.columns = 8;
  filter_sheet.title = "first-layer filters (" + filters.layer + "; grey = 0)";
  write_png((out / "filters.png").string(), make_contact_sheet(filter_cells, filter_sheet));
  views["filters"] = "filters.png";

  // Feature visualisation batches are fixed by the units chosen, so oneDNN (faster) is fine here.
  ScopedBatchInvariantKernels onednn(false);
  std::vector<Objective> units;
  const std::vector<std::string> layers = {"relu1", "relu2", "relu3_2", "relu4"};
  for (const std::string& layer : layers) {
    const int channels = layer_channels(model, layer);
    for (int k = 0; k < 4; ++k) {
      Objective unit;
      unit.kind = ObjectiveKind::channel;
      unit.layer = layer;
      unit.channel = k * channels / 4;
      units.push_back(std::move(unit));
    }
  }
  ActivationMaxOptions fv;
  fv.steps = o.fv_steps;
  fv.width = fv.height = card.input_width;
  fv.seed = 1;
  std::vector<SheetCell> fv_cells;
  for (const ActivationMaxResult& r : run_activation_max(model, units, fv)) {
    fv_cells.push_back({enlarge(to_rgb8(r.image), 2, cv::INTER_LINEAR), r.objective.describe()});
  }
  SheetOptions fv_sheet;
  fv_sheet.columns = 4;
  fv_sheet.title = "feature visualisation: 4 channels per stage, shallow (top) to deep";
  write_png((out / "features.png").string(), make_contact_sheet(fv_cells, fv_sheet));
  views["features"] = "features.png";

  if (o.map_canvases > 0) {
    std::vector<cv::Mat> inputs, thumbnails;
    std::vector<std::string> keys;
    std::vector<int> labels;
    const std::int64_t count = std::min<std::int64_t>(o.map_canvases, test.labels.dims[0]);
    for (std::int64_t i = 0; i < count; ++i) {
      CanvasOptions canvas_options;
      canvas_options.size = card.input_width;
      const Canvas c = make_canvas_from_split(test, i, kTestCanvasSeed, canvas_options);
      inputs.push_back(prepare_model_input(c.rgb, card.input_width, card.input_height, FitMode::stretch));
      thumbnails.push_back(c.rgb);
      keys.push_back(cv::format("test/%05lld", static_cast<long long>(i)));
      labels.push_back(c.label);
    }
    // t-SNE of the pooled codes, thumbnails framed in their true class's colour.
    std::vector<float> codes;
    int dims = 0;
    AtlasCollection atlas_samples;
    atlas_samples.info.model = card.name;
    atlas_samples.info.layer = model.resolve_layer("relu4");
    atlas_samples.info.num_classes = model.num_classes();
    atlas_samples.info.labels = card.labels;
    AtlasCollectOptions collect;
    collect.layer = "relu4";
    collect.samples_per_image = 2;
    collect.attribution = parse_atlas_attribution("auto", model.num_classes());
    atlas_samples.info.attribution_classes = collect.attribution.classes_per_sample(model.num_classes());
    for (std::size_t first = 0; first < inputs.size(); first += 32) {
      const std::size_t last = std::min(inputs.size(), first + 32);
      const std::vector<cv::Mat> batch(inputs.begin() + first, inputs.begin() + last);
      const ImageCodes c = compute_image_codes(model, batch, "gap");
      dims = c.dims;
      for (const auto& code : c.codes) codes.insert(codes.end(), code.begin(), code.end());
      const std::vector<std::string> batch_keys(keys.begin() + first, keys.begin() + last);
      append_to_collection(atlas_samples, collect_atlas_samples(model, batch, batch_keys, collect), batch_keys);
    }
    if (count >= 4) {
      TsneOptions t;
      t.perplexity = 30;
      t.threads = global_options().threads;
      const TsneResult map = run_tsne(codes.data(), static_cast<int>(count), dims, t);
      write_png((out / "tsne_map.png").string(), render_image_map(map.coordinates, thumbnails, labels, 1400, 40));
      views["tsne_map"] = "tsne_map.png";
      ActivationAtlasOptions a;
      a.grids = {8};
      a.min_count = 3;
      a.tsne.threads = t.threads;
      a.icon.width = a.icon.height = 48;
      a.icon.steps = o.fv_steps;
      const ActivationAtlasResult atlas = run_activation_atlas(&model, atlas_samples, a);
      const ActivationAtlasGrid& g = atlas.grids.front();
      std::vector<int> cell_index;
      std::vector<cv::Mat> icons;
      std::vector<std::string> captions;
      for (std::size_t i = 0; i < g.cells.size(); ++i) {
        cell_index.push_back(g.cells[i].row * g.grid + g.cells[i].column);
        icons.push_back(to_rgb8(g.icons[i]));
        captions.push_back(g.cells[i].top_classes.empty() ? "" : card.label(g.cells[i].top_classes.front().first));
      }
      cv::Mat picture = render_grid_map(cell_index, g.grid, g.grid, icons, {}, 96);
      caption_grid_map(picture, cell_index, g.grid, g.grid, 96, captions);
      write_png((out / "atlas.png").string(), picture);
      views["atlas"] = "atlas.png";
      manifest.header()["atlas"] = {{"layer", atlas_samples.info.layer}, {"samples", atlas.rows.size()},
                                    {"grid", g.grid}, {"cells", g.cells.size()}, {"canvases", count}};
    }
  }
  manifest.header()["learned"] = views;
}

}  // namespace

void setup_demo(CLI::App& app) {
  auto options = std::make_shared<DemoOptions>();
  auto* cmd = app.add_subcommand("demo", "predict and explain demo-model test canvases; writes a browsable result");
  add_model_options(cmd, options->model, "fashion_vgg");
  cmd->add_option("-o,--out", options->out, "output directory");
  cmd->add_option("--data-dir", options->data_dir, "Fashion-MNIST directory (Debian: dataset-fashion-mnist)");
  cmd->add_option("--per-class", options->per_class, "test canvases per class")->check(CLI::Range(1, 100));
  cmd->add_option("--scale", options->scale, "enlargement of the pictures")->check(CLI::Range(1, 16));
  cmd->add_option("--map-canvases", options->map_canvases, "test canvases for the t-SNE map and the atlas (0: none)")
      ->check(CLI::Range(0, 10000));
  cmd->add_option("--fv-steps", options->fv_steps, "feature-visualisation steps (layer sheet, atlas icons)")
      ->check(CLI::Range(1, 10000));
  cmd->callback([options] {
    namespace fs = std::filesystem;
    ModelSession session = open_model(options->model);
    LoadedModel& model = *session.model;
    const ModelCard& card = model.card();

    // The first `per_class` test items of every class, drawn exactly like the evaluation canvases.
    const FashionMnistSplit test = load_fashion_mnist(options->data_dir, "test");
    CanvasOptions canvas_options;
    canvas_options.size = card.input_width;
    std::vector<Canvas> canvases;
    std::vector<int> taken(10, 0);
    for (std::int64_t i = 0; i < test.labels.dims[0] && static_cast<int>(canvases.size()) < 10 * options->per_class; ++i) {
      const int label = test.labels.values[i];
      if (taken[label]++ < options->per_class) canvases.push_back(make_canvas_from_split(test, i, kTestCanvasSeed, canvas_options));
    }
    ensure_output_dir(options->out);
    write_canvas_set((fs::path(options->out) / "inputs").string(), canvases, fashion_mnist_class_names());

    std::vector<cv::Mat> inputs;
    for (const auto& c : canvases) inputs.push_back(prepare_model_input(c.rgb, card.input_width, card.input_height, FitMode::stretch));

    Manifest manifest(options->out, "demo");
    describe_run(manifest, session, {{"per_class", options->per_class}, {"canvas_seed", kTestCanvasSeed}});

    const auto predictions = run_predict(model, inputs, PredictOptions{3});
    std::vector<DemoView> views;
    std::vector<std::vector<GradCamResult>> cams;
    for (CamMethod method : {CamMethod::gradcam, CamMethod::gradcam_plus_plus, CamMethod::layercam}) {
      GradCamOptions cam;
      cam.method = method;
      cams.push_back(run_gradcam(model, inputs, cam));
      DemoView view;
      view.name = cam_method_name(method);
      for (const auto& r : cams.back()) view.maps.push_back(r.cam);
      views.push_back(std::move(view));
    }
    {
      BackpropOptions backprop;  // guided backpropagation: shown as the gradient image itself
      DemoView view{"guided-backprop", {}, {}};
      for (const auto& r : run_backprop(model, inputs, backprop)) {
        view.maps.push_back(r.magnitude);
        view.pictures.push_back(gradient_to_display(r.gradient));
      }
      views.push_back(std::move(view));
      SaliencyOptions smooth;  // SmoothGrad with a fixed seed, so the demo is reproducible
      smooth.smooth_samples = 16;
      DemoView saliency{"smoothgrad", {}, {}};
      for (const auto& r : run_saliency(model, inputs, smooth)) saliency.maps.push_back(normalised(r.map));
      views.push_back(std::move(saliency));
      OcclusionOptions occlusion;  // a patch about a third of the item, as in the benchmark
      occlusion.patch = 9;
      occlusion.stride = 4;
      occlusion.batch_size = 64;
      DemoView occluded{"occlusion", {}, {}};
      for (const auto& r : run_occlusion(model, inputs, occlusion)) {
        cv::Mat drop = cv::max(r.map, 0.0);  // what hiding a patch costs the predicted class
        occluded.maps.push_back(normalised(drop));
      }
      views.push_back(std::move(occluded));
    }

    const Colormap colormap = Colormap::jet;
    const int scale = options->scale;
    std::vector<SheetCell> summary;
    std::vector<int> hits(views.size(), 0);
    int correct = 0;
    for (std::size_t i = 0; i < canvases.size(); ++i) {
      const Canvas& c = canvases[i];
      const Prediction& top = predictions[i].front();
      const std::string truth = card.label(c.label);
      correct += top.index == c.label;
      ManifestEntry entry;
      entry.input = "inputs/canvas_" + cv::format("%05zu", i) + ".png";
      entry.outputs.emplace_back("input", entry.input);  // written into the output directory: index.html shows it
      entry.predictions = predictions_json(predictions[i]);
      entry.extra["label"] = c.label;
      entry.extra["class"] = truth;
      entry.extra["box"] = {c.box.x, c.box.y, c.box.width, c.box.height};
      const std::string stem = "canvas_" + cv::format("%05zu", i);
      const cv::Mat big = enlarge(c.rgb, scale, cv::INTER_NEAREST);
      std::vector<SheetCell> cells = {{big, "input: " + truth}};
      nlohmann::json pointing = nlohmann::json::object();
      for (std::size_t v = 0; v < views.size(); ++v) {
        const cv::Mat& map = views[v].maps[i];
        const bool hit = pointing_game_hit(map, c.box);
        hits[v] += hit;
        pointing[views[v].name] = hit;
        const cv::Mat overlay = views[v].pictures.empty()
                                    ? overlay_heatmap(big, enlarge(map, scale, cv::INTER_LINEAR), colormap)
                                    : enlarge(views[v].pictures[i], scale, cv::INTER_NEAREST);
        write_output_png(manifest, entry, views[v].name, stem + "." + views[v].name + ".png", overlay);
        write_output_npy(manifest, entry, views[v].name + "_map", stem + "." + views[v].name + ".npy", map);
        cells.push_back({overlay, views[v].name + (hit ? " (hit)" : " (miss)")});
      }
      entry.extra["pointing_game"] = pointing;
      SheetOptions sheet;
      sheet.columns = static_cast<int>(cells.size());
      sheet.cell_width = card.input_width * scale;
      sheet.cell_height = card.input_height * scale;
      sheet.title = truth + " -> " + top.label + cv::format(" %.0f%%", 100 * top.probability);
      write_output_png(manifest, entry, "sheet", stem + ".sheet.png", make_contact_sheet(cells, sheet));
      summary.push_back({cells[1].image, truth + " -> " + top.label});
      manifest.add(std::move(entry));
    }
    SheetOptions summary_options;
    summary_options.columns = 5;
    summary_options.title = "Grad-CAM on " + std::to_string(canvases.size()) + " test canvases (truth -> prediction)";
    write_png((fs::path(options->out) / "summary.png").string(), make_contact_sheet(summary, summary_options));
    manifest.header()["summary_sheet"] = "summary.png";
    nlohmann::json rates = nlohmann::json::object();
    for (std::size_t v = 0; v < views.size(); ++v) rates[views[v].name] = static_cast<double>(hits[v]) / canvases.size();
    manifest.header()["pointing_game_hit_rate"] = rates;
    manifest.header()["accuracy"] = static_cast<double>(correct) / canvases.size();
    write_learned_views(model, *options, test, manifest);
    manifest.write();

    write_index_html(options->out);

    std::printf("demo: %zu test canvases, %d predicted correctly\n", canvases.size(), correct);
    for (std::size_t v = 0; v < views.size(); ++v) {
      std::printf("  pointing game %-10s %d/%zu\n", views[v].name.c_str(), hits[v], canvases.size());
    }
    std::printf("open %s\n", (fs::path(options->out) / "index.html").string().c_str());
  });
}

}  // namespace cnnvis::cli
