// cnnvis top-patches: dataset examples per unit. Streams over any number of inputs keeping, for every
// channel of a layer, the k inputs that excite it most (bounded memory: k patches per channel) and
// writes one sheet per unit with the receptive-field patches (or whole inputs) and activation values,
// plus a JSON index.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>

#include <opencv2/imgproc.hpp>
#include <spdlog/spdlog.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/core/top_k.h"
#include "cnnvis/io/files.h"
#include "cnnvis/io/image_io.h"
#include "cnnvis/io/manifest.h"
#include "cnnvis/io/render.h"
#include "cnnvis/methods/unit_peaks.h"
#include "commands.h"
#include "common.h"

namespace cnnvis::cli {

namespace fs = std::filesystem;

namespace {
struct TopPatchesOptions {
  ModelOptions model;
  InputOptions inputs;
  std::string out = "cnnvis-out";
  std::string layer;
  std::vector<int> channels;
  int k = 9;
  int patch_size = 96;
  bool whole = false;
};

struct Example {
  std::string path;
  int y = 0, x = 0;
  cv::Rect box;   // in model-input pixels
  cv::Mat patch;  // RGB8, at most patch_size on its longest side
};

cv::Mat to_rgb8(const cv::Mat& input01) {
  cv::Mat out;
  input01.convertTo(out, CV_8UC3, 255.0);
  return out;
}
}  // namespace

void setup_top_patches(CLI::App& app) {
  auto o = std::make_shared<TopPatchesOptions>();
  auto* cmd = app.add_subcommand("top-patches", "dataset examples: the inputs and receptive-field patches that excite each unit most");
  add_model_options(cmd, o->model);
  add_input_options(cmd, o->inputs);
  cmd->add_option("-o,--out", o->out, "output directory")->capture_default_str();
  cmd->add_option("-l,--layer", o->layer, "layer name or alias (default: the card's)");
  cmd->add_option("-c,--channels", o->channels, "channels (units), comma-separated; default: all")->delimiter(',')
      ->allow_extra_args(false);
  cmd->add_option("-k,--k", o->k, "examples per unit")->capture_default_str()->check(CLI::Range(1, 1000));
  cmd->add_option("--patch-size", o->patch_size, "longest side of a patch on the sheet")->capture_default_str()
      ->check(CLI::Range(8, 1024));
  cmd->add_flag("--whole", o->whole, "show whole inputs instead of receptive-field patches");
  cmd->callback([o] {
    ModelSession session = open_model(o->model);
    LoadedModel& model = *session.model;
    const std::string layer = model.resolve_layer(o->layer.empty() ? model.card().default_layer : o->layer);
    ReceptiveField field;
    std::vector<std::int64_t> shape;
    for (const auto& info : model.layers()) {
      if (info.name == layer) field = info.field, shape = info.output_shape;
    }
    const int total_channels = shape.empty() ? 0 : static_cast<int>(shape[0]);
    for (int c : o->channels) {
      if (c < 0 || c >= total_channels) {
        throw UsageError("channel " + std::to_string(c) + " is out of range for layer " + layer + " (0.." +
                         std::to_string(total_channels - 1) + ")");
      }
    }
    std::vector<int> channels = o->channels;
    if (channels.empty()) {
      for (int c = 0; c < total_channels; ++c) channels.push_back(c);
    }
    ensure_output_dir(o->out);
    const fs::path sheets_dir = fs::path(o->out) / "top_patches";
    fs::create_directories(sheets_dir);
    Manifest manifest(o->out, "top-patches");
    describe_run(manifest, session, {{"layer", layer}, {"k", o->k}, {"whole", o->whole}, {"fit", o->inputs.fit}});
    std::vector<StreamingTopK<Example>> top(channels.size(), StreamingTopK<Example>(o->k));
    bool spatial = false;
    auto process = [&](std::vector<BatchItem>& batch) {
      std::vector<cv::Mat> inputs;
      for (auto& item : batch) inputs.push_back(item.input);
      const UnitPeaks peaks = compute_unit_peaks(model, inputs, layer, channels);
      spatial = peaks.spatial;
      for (std::size_t i = 0; i < batch.size(); ++i) {
        cv::Mat rgb8;  // made once per input, only when some unit keeps it
        for (std::size_t c = 0; c < channels.size(); ++c) {
          const UnitPeak& peak = peaks.peaks[i][c];
          if (!top[c].would_keep(peak.value)) continue;
          if (rgb8.empty()) rgb8 = to_rgb8(batch[i].input);
          Example e;
          e.path = batch[i].path;
          e.y = peak.y;
          e.x = peak.x;
          if (spatial && !o->whole) {
            const auto [x0, x1] = field.span(peak.x);
            const auto [y0, y1] = field.span(peak.y);
            e.box = cv::Rect(cv::Point(static_cast<int>(std::floor(x0)), static_cast<int>(std::floor(y0))),
                             cv::Point(static_cast<int>(std::ceil(x1)), static_cast<int>(std::ceil(y1)))) &
                    cv::Rect(0, 0, rgb8.cols, rgb8.rows);
          } else {
            e.box = cv::Rect(0, 0, rgb8.cols, rgb8.rows);
          }
          const cv::Mat crop = rgb8(e.box);
          const double scale = std::min(1.0, static_cast<double>(o->patch_size) / std::max(crop.cols, crop.rows));
          if (scale < 1.0) {
            cv::resize(crop, e.patch, cv::Size(), scale, scale, cv::INTER_AREA);
          } else {
            e.patch = crop.clone();
          }
          top[c].push(peak.value, e);
        }
      }
    };
    run_batches(o->inputs, model, manifest, process);

    nlohmann::json units = nlohmann::json::array();
    for (std::size_t c = 0; c < channels.size(); ++c) {
      const auto best = top[c].sorted();
      std::vector<SheetCell> cells;
      nlohmann::json examples = nlohmann::json::array();
      for (std::size_t r = 0; r < best.size(); ++r) {
        const Example& e = best[r].item;
        cells.push_back({e.patch, cv::format("%.3g  %s", best[r].score, fs::path(e.path).filename().string().c_str())});
        examples.push_back({{"rank", r + 1}, {"value", best[r].score}, {"input", e.path}, {"y", e.y}, {"x", e.x},
                            {"box", {e.box.x, e.box.y, e.box.x + e.box.width, e.box.y + e.box.height}}});
      }
      const std::string file = cv::format("unit_%04d.png", channels[c]);
      if (!cells.empty()) {
        SheetOptions sheet;
        sheet.columns = static_cast<int>(std::ceil(std::sqrt(static_cast<double>(cells.size()))));
        sheet.cell_width = sheet.cell_height = o->patch_size;
        sheet.title = cv::format("%s unit %d: top %zu %s", layer.c_str(), channels[c], cells.size(),
                                 spatial && !o->whole ? "receptive-field patches" : "inputs");
        write_png((sheets_dir / file).string(), make_contact_sheet(cells, sheet));
      }
      units.push_back({{"channel", channels[c]}, {"sheet", cells.empty() ? "" : "top_patches/" + file},
                       {"examples", examples}});
    }
    nlohmann::json index = {{"layer", layer},
                            {"k", o->k},
                            {"spatial", spatial},
                            {"patches", spatial && !o->whole},
                            {"input_size", {model.card().input_width, model.card().input_height}},
                            {"receptive_field", {{"size", field.size}, {"stride", field.stride}, {"start", field.start}}},
                            {"box_units", "model-input pixels [x0, y0, x1, y1)"},
                            {"units", units}};
    write_text_atomically((fs::path(o->out) / "top_patches.json").string(), index.dump(1) + "\n");
    manifest.header()["index"] = "top_patches.json";
    manifest.write();
    std::printf("%s\n", (fs::path(o->out) / "top_patches.json").string().c_str());
    command_exit_code() = batch_exit_code(manifest);
  });
}

}  // namespace cnnvis::cli
