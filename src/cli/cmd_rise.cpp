// cnnvis rise: RISE maps (the target's probability averaged over random smooth masks).
#include <filesystem>
#include <memory>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "cnnvis/io/colormap.h"
#include "cnnvis/io/manifest.h"
#include "cnnvis/io/render.h"
#include "cnnvis/methods/rise.h"
#include "commands.h"
#include "common.h"

namespace cnnvis::cli {

namespace {
struct RiseCommandOptions {
  ModelOptions model;
  InputOptions inputs;
  OutputOptions output;
  RiseOptions rise;
};

// (m - min) / (max - min): a RISE map is a probability everywhere, what matters is where it is higher.
cv::Mat scale_min_max(const cv::Mat& map) {
  double lo = 0, hi = 0;
  cv::minMaxLoc(map, &lo, &hi);
  cv::Mat out;
  if (hi > lo) {
    map.convertTo(out, CV_32F, 1.0 / (hi - lo), -lo / (hi - lo));
  } else {
    out = cv::Mat::zeros(map.size(), CV_32F);
  }
  return out;
}
}  // namespace

void setup_rise(CLI::App& app) {
  auto options = std::make_shared<RiseCommandOptions>();
  auto* cmd = app.add_subcommand("rise", "RISE: the target's probability averaged over random masks");
  add_model_options(cmd, options->model);
  // Here --batch-size counts masked copies per pass, which is what bounds memory; images go one by one.
  options->inputs.batch_size = options->rise.batch_size;
  add_input_options(cmd, options->inputs);
  options->inputs.resumable = true;  // each input's outputs depend on that input alone
  cmd->get_option("--batch-size")->description("masks generated at once, rounded up to a multiple of 8 (bounds memory; the map does not depend on it)");
  add_output_options(cmd, options->output);
  RiseOptions& r = options->rise;
  cmd->add_option("--masks", r.masks, "number of random masks N")->check(CLI::PositiveNumber);
  cmd->add_option("--cells", r.cells, "grid cells per side s of a mask")->check(CLI::PositiveNumber);
  cmd->add_option("--keep", r.keep, "probability p that a grid cell is kept, in (0, 1]");
  cmd->add_option("--seed", r.seed, "mask seed (same seed, same map, whatever the batch size)");
  cmd->add_option("-t,--target", r.target, "class to explain: top, an index, or a class name");
  cmd->callback([options] {
    const Colormap colormap = parse_colormap(options->output.colormap);
    RiseOptions rise = options->rise;
    rise.batch_size = options->inputs.batch_size;
    validate_rise_options(rise);  // fail fast, exit code 2
    InputOptions inputs = options->inputs;
    inputs.batch_size = 1;
    ModelSession session = open_model(options->model);
    LoadedModel& model = *session.model;
    parse_target(rise.target, model.card(), model.num_classes());

    ensure_output_dir(options->output.out);
    Manifest manifest(options->output.out, "rise");
    describe_run(manifest, session,
                 {{"method", "rise"}, {"masks", rise.masks}, {"cells", rise.cells}, {"keep", rise.keep},
                  {"seed", rise.seed}, {"target", rise.target}, {"batch_size", rise.batch_size},
                  {"colormap", options->output.colormap}, {"alpha", options->output.alpha}, {"fit", inputs.fit}});
    run_batches(inputs, model, manifest, [&](std::vector<BatchItem>& batch) {
      for (BatchItem& item : batch) {
        Progress progress("masks of " + item.stem, static_cast<std::size_t>(rise.masks));
        RiseOptions per_image = rise;
        per_image.progress = [&progress](std::size_t done, std::size_t) { progress.update(done); };
        const RiseResult result = run_rise(model, {item.input}, per_image)[0];
        progress.finish();
        ManifestEntry& entry = *item.entry;
        const cv::Mat map01 = scale_min_max(result.map);
        write_map_pictures(manifest, item, "rise", map01, options->output, colormap);
        write_output_npy(manifest, entry, "rise", item.stem + ".rise.npy", result.map);
        entry.predictions = predictions_json(result.top);
        entry.extra["target"] = {{"index", result.target.index}, {"label", result.target.label},
                                 {"logit", result.target.logit}, {"probability", result.target.probability}};
        entry.extra["method"] = "rise";
        entry.extra["masks"] = rise.masks;
      }
    });
    command_exit_code() = batch_exit_code(manifest);
  });
}

}  // namespace cnnvis::cli
