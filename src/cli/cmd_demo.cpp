// cnnvis demo: the README's first command. Runs prediction and every explanation method on a few
// Fashion-MNIST test canvases with the demo model and writes a browsable result: per-canvas contact
// sheets, overlays, raw maps, a summary sheet, manifest.json and index.html.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/imgproc.hpp>

#include "cnnvis/core/errors.h"
#include "cnnvis/io/canvas.h"
#include "cnnvis/io/colormap.h"
#include "cnnvis/io/html_index.h"
#include "cnnvis/io/idx.h"
#include "cnnvis/io/manifest.h"
#include "cnnvis/io/render.h"
#include "cnnvis/methods/backprop.h"
#include "cnnvis/methods/gradcam.h"
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

}  // namespace

void setup_demo(CLI::App& app) {
  auto options = std::make_shared<DemoOptions>();
  auto* cmd = app.add_subcommand("demo", "predict and explain demo-model test canvases; writes a browsable result");
  add_model_options(cmd, options->model, "fashion_vgg");
  cmd->add_option("-o,--out", options->out, "output directory");
  cmd->add_option("--data-dir", options->data_dir, "Fashion-MNIST directory (Debian: dataset-fashion-mnist)");
  cmd->add_option("--per-class", options->per_class, "test canvases per class")->check(CLI::Range(1, 100));
  cmd->add_option("--scale", options->scale, "enlargement of the pictures")->check(CLI::Range(1, 16));
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
      DemoView view{cam_method_name(method), {}};
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
