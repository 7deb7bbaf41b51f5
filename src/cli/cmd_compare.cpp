// cnnvis compare: regression of a run against a golden run (maps, images, predictions), for CI.
// Exit codes: 0 all within tolerance, 1 some outputs differ / are missing / were added, 2 unusable input
// (a missing manifest, a shape mismatch, an unreadable file).
#include <cstdio>
#include <filesystem>
#include <memory>

#include <spdlog/spdlog.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/io/compare.h"
#include "commands.h"
#include "common.h"

namespace cnnvis::cli {

namespace {
struct CompareCommandOptions {
  std::string golden, fresh, report;
  CompareTolerances tolerances;
  bool update = false;
  bool no_diffs = false;
  std::size_t list = 20;
};
}  // namespace

void setup_compare(CLI::App& app) {
  auto options = std::make_shared<CompareCommandOptions>();
  auto* cmd = app.add_subcommand("compare", "compare a run with a golden run (CI regression of heatmaps); exit 0 same, 1 differ, 2 unusable");
  cmd->add_option("golden", options->golden, "golden output directory (with manifest.json)")->required();
  cmd->add_option("new", options->fresh, "new output directory (with manifest.json)")->required();
  CompareTolerances& t = options->tolerances;
  cmd->add_option("--tol-max", t.max_diff, "maps: largest |new - golden| relative to max |golden|")->check(CLI::NonNegativeNumber);
  cmd->add_option("--tol-mean", t.mean_diff, "maps and images: mean |new - golden| (maps relative to max |golden|, images on [0, 1])")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--min-corr", t.min_corr, "maps and images: smallest Pearson correlation")->check(CLI::Range(-1.0, 1.0));
  cmd->add_option("--tol-image-max", t.image_max_diff, "images: largest pixel difference on [0, 1] (0.02 is about 5 of 255 levels)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--tol-prob", t.probability, "largest change of the top class probability")->check(CLI::NonNegativeNumber);
  cmd->add_option("--report", options->report, "directory for report.json and diffs/ (default: NEW/compare)");
  cmd->add_flag("--no-diff-images", options->no_diffs, "do not write difference images");
  cmd->add_option("--list", options->list, "failing outputs listed in the summary");
  cmd->add_flag("--update", options->update, "after comparing, make GOLDEN a copy of NEW's results (creates GOLDEN if needed)");
  cmd->callback([options] {
    namespace fs = std::filesystem;
    CompareOptions compare;
    compare.tolerances = options->tolerances;
    compare.report_dir = options->report.empty() ? (fs::path(options->fresh) / "compare").string() : options->report;
    compare.write_diff_images = !options->no_diffs;
    std::error_code ec;
    const bool bootstrap = options->update && !fs::exists(fs::path(options->golden) / "manifest.json", ec);
    try {
      if (!bootstrap) {
        const CompareReport report = compare_runs(options->golden, options->fresh, compare);
        std::fputs(compare_summary(report, options->list).c_str(), stdout);
        command_exit_code() = report.exit_code();
      }
      if (options->update) {
        const std::size_t copied = update_golden(options->golden, options->fresh);
        std::printf("updated %s from %s (%zu files)\n", options->golden.c_str(), options->fresh.c_str(), copied);
        command_exit_code() = 0;
      }
    } catch (const InputError& e) {
      // A run that cannot be compared at all (no manifest, not a directory) is unusable input: exit 2.
      spdlog::error("{}", e.what());
      command_exit_code() = 2;
    }
    std::fflush(stdout);
  });
}

}  // namespace cnnvis::cli
