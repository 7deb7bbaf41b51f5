// cnnvis canvases: writes Fashion-MNIST "items on a canvas" images with their labels and boxes, exactly
// as training and evaluation draw them.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cnnvis/core/errors.h"
#include "cnnvis/io/canvas.h"
#include "cnnvis/io/idx.h"
#include "cnnvis/methods/train.h"
#include "commands.h"
#include "common.h"

namespace cnnvis::cli {

namespace {
struct CanvasCommandOptions {
  std::string split = "test";
  std::int64_t count = 16;
  std::int64_t first = 0;
  std::uint64_t seed = 0;
  int size = 64;
  std::string data_dir = kFashionMnistDir;
  std::string out;
};
}  // namespace

void setup_canvases(CLI::App& app) {
  auto options = std::make_shared<CanvasCommandOptions>();
  auto* cmd = app.add_subcommand("canvases", "write Fashion-MNIST items-on-a-canvas images (PNG + canvases.json)");
  cmd->add_option("--split", options->split, "test | train")->capture_default_str();
  cmd->add_option("-n,--count", options->count, "number of canvases")->capture_default_str();
  cmd->add_option("--first", options->first, "index of the first item in the split")->capture_default_str();
  auto* seed = cmd->add_option(
      "--seed", options->seed,
      "canvas base seed; default: " + std::to_string(kTestCanvasSeed) +
          " for test (the canvases `cnnvis train` evaluates on), and for train the canvases of epoch 1 of "
          "`cnnvis train --seed 1`");
  cmd->add_option("--size", options->size, "canvas side in pixels (the model expects 64)")->capture_default_str();
  cmd->add_option("--data-dir", options->data_dir, "directory with the Fashion-MNIST IDX files")->capture_default_str();
  cmd->add_option("-o,--out", options->out, "output directory")->required();
  cmd->callback([options, seed] {
    const CanvasCommandOptions& o = *options;
    if (o.split != "test" && o.split != "train")
      throw UsageError("unknown split '" + o.split + "' (expected test or train)");
    if (o.count < 1) throw UsageError("--count must be at least 1, got " + std::to_string(o.count));
    if (o.first < 0) throw UsageError("--first must be >= 0, got " + std::to_string(o.first));
    const FashionMnistSplit split = load_fashion_mnist(o.data_dir, o.split);
    const std::int64_t total = split.images.dims[0];
    if (o.first >= total)
      throw UsageError("--first " + std::to_string(o.first) + " is past the end of the " + o.split + " split (" +
                       std::to_string(total) + " items)");
    const std::int64_t end = std::min(total, o.first + o.count);
    std::uint64_t base_seed = o.seed;
    if (seed->count() == 0) base_seed = o.split == "test" ? kTestCanvasSeed : train_canvas_seed(1, 0);

    CanvasOptions canvas;
    canvas.size = o.size;
    std::vector<Canvas> canvases;
    canvases.reserve(static_cast<std::size_t>(end - o.first));
    for (std::int64_t i = o.first; i < end; ++i) canvases.push_back(make_canvas_from_split(split, i, base_seed, canvas));
    write_canvas_set(o.out, canvases, fashion_mnist_class_names());
    std::printf("wrote %zu %s canvases (items %lld..%lld, seed %llu) to %s\n", canvases.size(), o.split.c_str(),
                static_cast<long long>(o.first), static_cast<long long>(end - 1),
                static_cast<unsigned long long>(base_seed), o.out.c_str());
  });
}

}  // namespace cnnvis::cli
